#include "train/dist_sync.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

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

void sum_grads_over_ranks(std::vector<std::pair<std::string, at::Tensor>>& params) {
  if (!dist::active()) return;
  at::NoGradGuard g;
  at::Tensor has = at::zeros({static_cast<int64_t>(params.size())}, at::kFloat);
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].second.grad().defined()) has[i] = 1.0f;
  dist::all_reduce_sum(has);
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (has[i].item<float>() == 0) continue;
    at::Tensor& p = params[i].second;
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  dist::all_reduce_sum(grads);
}

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
