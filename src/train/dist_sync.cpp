#include "train/dist_sync.h"

#include <ATen/ATen.h>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "dist/dist.h"

namespace prefopt {

void broadcast_params(std::vector<std::pair<std::string, at::Tensor>>& params) {
  if (!dist::active()) return;
  at::NoGradGuard g;
  for (auto& [n, t] : params) {
    at::Tensor d = t.detach();
    dist::broadcast(d, 0);
  }
}

namespace {

// A post-hook of one tensor's AccumulateGrad node: its gradient is final for this backward pass.
struct FinalGradHook : torch::autograd::FunctionPostHook {
  FinalGradHook(std::weak_ptr<GradReducer::State> s, size_t i) : s(std::move(s)), i(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override;
  std::weak_ptr<GradReducer::State> s;
  size_t i;
};

}  // namespace

struct GradReducer::State {
  std::vector<at::Tensor> params;
  std::vector<size_t> bucket_of;              // per tensor
  std::vector<int64_t> offset;                // per tensor, in its bucket
  std::vector<std::vector<size_t>> members;   // per bucket, the tensors
  std::vector<at::Tensor> flat;               // per bucket
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // kept alive: they hold the hooks
  std::vector<uintptr_t> hook_keys;
  bool overlap = true;
  // One step's progress.
  std::mutex mu;
  bool armed = false, repeated = false;
  std::vector<char> ready;         // per tensor: copied into its bucket
  std::vector<size_t> missing;     // per bucket: tensors not ready yet
  size_t next = 0;                 // the first bucket not started
  std::vector<dist::Pending> work;  // per bucket
  double exposed_s = 0;
  int64_t steps = 0, started_in_backward = 0;

  at::Tensor slot(size_t i) { return flat[bucket_of[i]].narrow(0, offset[i], params[i].numel()); }
  // Copies tensor i's gradient (zeros when it has none) into its bucket.
  void fill(size_t i) {
    at::NoGradGuard g;
    const at::Tensor& gr = params[i].grad();
    if (gr.defined()) slot(i).view(params[i].sizes()).copy_(gr);
    else slot(i).zero_();
  }
  // Starts buckets next, next+1, ... as long as they are complete.
  void start_ready() {
    while (next < flat.size() && missing[next] == 0) work[next] = dist::all_reduce_sum_async(flat[next]), ++next;
  }
  void on_final(size_t i) {
    std::lock_guard<std::mutex> l(mu);
    if (!armed) return;
    if (ready[i]) {
      repeated = true;
      return;
    }
    ready[i] = 1;
    fill(i);
    --missing[bucket_of[i]];
    start_ready();
  }
  void reset() {
    std::fill(ready.begin(), ready.end(), 0);
    for (size_t b = 0; b < flat.size(); ++b) missing[b] = members[b].size();
    next = 0;
    armed = false;
    repeated = false;
  }
};

namespace {

torch::autograd::variable_list FinalGradHook::operator()(const torch::autograd::variable_list& outputs,
                                                         const torch::autograd::variable_list&) {
  if (auto st = s.lock()) st->on_final(i);
  return outputs;
}

}  // namespace

GradReducer::GradReducer(std::vector<std::pair<std::string, at::Tensor>>& params, double bucket_cap_mb, bool overlap)
    : s_(std::make_shared<State>()) {
  State& s = *s_;
  s.overlap = overlap;
  const size_t P = params.size();
  for (auto& [n, t] : params) s.params.push_back(t);
  s.bucket_of.assign(P, 0), s.offset.assign(P, 0), s.ready.assign(P, 0);
  const double cap = bucket_cap_mb * 1024.0 * 1024.0;
  // Reverse order: the last tensors' gradients are final first.
  int64_t bytes = 0;
  for (size_t k = P; k-- > 0;) {
    const at::Tensor& t = s.params[k];
    const int64_t nb = t.numel() * static_cast<int64_t>(t.element_size());
    const bool fits = !s.members.empty() && s.params[s.members.back()[0]].scalar_type() == t.scalar_type() &&
                      s.params[s.members.back()[0]].device() == t.device() &&
                      static_cast<double>(bytes + nb) <= cap;
    if (!fits) s.members.emplace_back(), bytes = 0;
    s.bucket_of[k] = s.members.size() - 1;
    s.members.back().push_back(k);
    bytes += nb;
  }
  for (auto& m : s.members) {
    int64_t n = 0;
    for (size_t k : m) s.offset[k] = n, n += s.params[k].numel();
    s.flat.push_back(at::zeros({n}, s.params[m[0]].options().requires_grad(false)));
  }
  s.missing.assign(s.members.size(), 0);
  s.work.resize(s.members.size());
  s.reset();
  for (size_t i = 0; i < P; ++i) {
    if (!s.params[i].requires_grad()) {
      s.accumulators.emplace_back(), s.hook_keys.push_back(0);
      continue;
    }
    auto acc = torch::autograd::impl::grad_accumulator(s.params[i]);
    s.hook_keys.push_back(acc ? acc->add_post_hook(std::make_unique<FinalGradHook>(s_, i)) : 0);
    s.accumulators.push_back(std::move(acc));
  }
}

GradReducer::~GradReducer() {
  for (size_t i = 0; i < s_->accumulators.size(); ++i)
    if (s_->accumulators[i]) s_->accumulators[i]->del_post_hook(s_->hook_keys[i]);
}

void GradReducer::arm() {
  std::lock_guard<std::mutex> l(s_->mu);
  s_->armed = s_->overlap;
}

void GradReducer::finish() {
  State& s = *s_;
  const double t0 = now_seconds();
  std::lock_guard<std::mutex> l(s.mu);
  s.armed = false;
  s.started_in_backward += static_cast<int64_t>(s.next);
  at::NoGradGuard g;
  const size_t P = s.params.size(), B = s.flat.size();
  // Per tensor: has a gradient here; last: this rank saw a gradient accumulated twice.
  at::Tensor flags = at::zeros({static_cast<int64_t>(P) + 1}, at::kFloat);
  float* f = flags.data_ptr<float>();
  for (size_t i = 0; i < P; ++i) f[i] = s.params[i].grad().defined() ? 1.0f : 0.0f;
  f[P] = s.repeated ? 1.0f : 0.0f;
  auto start_rest = [&] {
    for (size_t b = s.next; b < B; ++b) {
      for (size_t k : s.members[b])
        if (!s.ready[k]) s.fill(k), s.ready[k] = 1;
      s.missing[b] = 0;
    }
    s.start_ready();
  };
  start_rest();
  dist::Pending pf = dist::all_reduce_sum_async(flags);
  pf.wait();
  for (auto& w : s.work) w.wait();
  if (f[P] > 0) {  // some rank's buckets hold a partial gradient: reduce the final ones again
    warn("dist: a gradient was accumulated twice in one backward pass; all-reducing after backward from now on "
         "(ddp_overlap off)");
    s.overlap = false;
    std::fill(s.ready.begin(), s.ready.end(), 0);
    s.next = 0;
    start_rest();
    for (auto& w : s.work) w.wait();
  }
  for (size_t i = 0; i < P; ++i) {
    if (f[i] == 0) continue;  // no gradient on any rank: none here either
    at::Tensor& p = s.params[i];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    p.mutable_grad().copy_(s.slot(i).view(p.sizes()));
  }
  s.reset();
  s.exposed_s += now_seconds() - t0;
  ++s.steps;
}

size_t GradReducer::buckets() const { return s_->flat.size(); }
bool GradReducer::overlap() const { return s_->overlap; }
double GradReducer::exposed_seconds() const { return s_->exposed_s; }
int64_t GradReducer::steps() const { return s_->steps; }
int64_t GradReducer::started_in_backward() const { return s_->started_in_backward; }

std::map<std::string, double> sum_over_ranks(const std::map<std::string, double>& mine) {
  if (!dist::active()) return mine;
  std::map<std::string, double> out;
  for (const std::string& blob : dist::all_gather_bytes(nlohmann::json(mine).dump())) {
    const nlohmann::json j = nlohmann::json::parse(blob);  // named: items() refers into it
    for (auto& [k, v] : j.items()) out[k] += v.get<double>();
  }
  return out;
}

}  // namespace prefopt
