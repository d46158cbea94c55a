#include "model/checkpointing.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace prefopt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the recomputation needs besides tensors: the function and the RNG state.
struct Recompute : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> fn;
  bool uses_rng = false;
  at::Tensor rng_state;
  // Mixed precision (model/precision.h) as it was in the forward: backward
  // runs outside that scope, and the recomputation must cast the same way.
  bool autocast_cpu = false, autocast_gpu = false;
  at::ScalarType cpu_dtype = at::kBFloat16, gpu_dtype = at::kHalf;
};

// Sets the autocast state of `rc` for its lifetime, then restores the old one.
class SameAutocast {
 public:
  explicit SameAutocast(const Recompute& rc)
      : cpu_(at::autocast::is_cpu_enabled()), gpu_(at::autocast::is_enabled()),
        cpu_dt_(at::autocast::get_autocast_cpu_dtype()), gpu_dt_(at::autocast::get_autocast_gpu_dtype()) {
    at::autocast::set_cpu_enabled(rc.autocast_cpu);
    at::autocast::set_enabled(rc.autocast_gpu);
    at::autocast::set_autocast_cpu_dtype(rc.cpu_dtype);
    at::autocast::set_autocast_gpu_dtype(rc.gpu_dtype);
  }
  ~SameAutocast() {
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
    at::autocast::set_autocast_cpu_dtype(cpu_dt_);
    at::autocast::set_autocast_gpu_dtype(gpu_dt_);
    at::autocast::clear_cache();
  }

 private:
  bool cpu_, gpu_;
  at::ScalarType cpu_dt_, gpu_dt_;
};

at::Generator generator_of(const at::Device& d) { return at::globalContext().defaultGenerator(d); }

struct Checkpoint : public torch::autograd::Function<Checkpoint> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, at::TensorList params,
                            c10::intrusive_ptr<Recompute> rc) {
    if (rc->uses_rng) rc->rng_state = generator_of(input.device()).get_state();
    rc->autocast_cpu = at::autocast::is_cpu_enabled(), rc->autocast_gpu = at::autocast::is_enabled();
    rc->cpu_dtype = at::autocast::get_autocast_cpu_dtype(), rc->gpu_dtype = at::autocast::get_autocast_gpu_dtype();
    at::Tensor out;
    {
      at::NoGradGuard ng;
      out = rc->fn(input);
    }
    ctx->save_for_backward({input});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(rc);
    ctx->saved_data["n_params"] = static_cast<int64_t>(params.size());
    // The parameters themselves: `fn` reads them; keep handles for grad().
    for (size_t i = 0; i < params.size(); ++i) ctx->saved_data["p" + std::to_string(i)] = params[i];
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto rc = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    const at::Tensor input = ctx->get_saved_variables()[0];
    const int64_t n = ctx->saved_data["n_params"].toInt();
    std::vector<at::Tensor> params;
    for (int64_t i = 0; i < n; ++i) params.push_back(ctx->saved_data["p" + std::to_string(i)].toTensor());

    at::Tensor x = input.detach();
    const bool need_x = ctx->needs_input_grad(0);
    if (need_x) x.requires_grad_(true);
    at::Tensor out;
    {
      at::AutoGradMode on(true);
      SameAutocast cast(*rc);
      if (rc->uses_rng) {
        auto gen = generator_of(input.device());
        at::Tensor now = gen.get_state();
        gen.set_state(rc->rng_state);
        out = rc->fn(x);
        gen.set_state(now);
      } else {
        out = rc->fn(x);
      }
    }
    variable_list inputs;
    std::vector<int64_t> slot;  // index in the returned list of each entry of `inputs`
    if (need_x) inputs.push_back(x), slot.push_back(0);
    for (int64_t i = 0; i < n; ++i)
      if (params[i].requires_grad()) inputs.push_back(params[i]), slot.push_back(1 + i);
    variable_list result(static_cast<size_t>(n) + 2);  // input, params..., the recompute capsule
    if (inputs.empty() || !out.requires_grad()) return result;
    auto grads = torch::autograd::grad({out}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t j = 0; j < grads.size(); ++j) result[static_cast<size_t>(slot[j])] = grads[j];
    return result;
  }
};

}  // namespace

at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& input,
                        const std::vector<at::Tensor>& params, bool uses_rng) {
  auto rc = c10::make_intrusive<Recompute>();
  rc->fn = fn;
  rc->uses_rng = uses_rng;
  return Checkpoint::apply(input, at::TensorList(params), rc);
}

}  // namespace prefopt
