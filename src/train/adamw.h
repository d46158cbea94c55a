// prefopt train: AdamW (Loshchilov & Hutter, decoupled weight decay) with the
// update torch.optim.AdamW performs, and HF Trainer's decay rule: parameters
// of dimension >= 2 decay, biases and norm weights (1-D) do not. The step
// count is global (one per optimizer step), the learning rate is passed per
// step (the schedule lives in Trainer::lr_at).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  // `params` are handles onto the model's tensors (updated in place).
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions opt);

  // One update with learning rate `lr`; `step` is 1-based (bias correction).
  // Every gradient is first multiplied by `grad_scale` (clipping) unless it is
  // 1; parameters without a gradient are skipped; gradients are zeroed after.
  void step(double lr, int64_t step, double grad_scale = 1.0);

  // HF's rule: decay every tensor of dimension >= 2 (not biases, not norms).
  static bool decays(const at::Tensor& t) { return t.dim() >= 2; }

  // First and second moments, one per parameter, in parameter order.
  std::vector<at::Tensor>& exp_avg() { return m1_; }
  std::vector<at::Tensor>& exp_avg_sq() { return m2_; }
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  AdamWOptions opt_;
  std::vector<at::Tensor> m1_, m2_;
};

}  // namespace prefopt
