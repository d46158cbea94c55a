#include "train/adamw.h"

#include <ATen/ATen.h>

#include <cmath>

namespace prefopt {

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions opt)
    : params_(std::move(params)), opt_(opt) {
  for (auto& [n, t] : params_) m1_.push_back(at::zeros_like(t)), m2_.push_back(at::zeros_like(t));
}

void AdamW::step(double lr, int64_t step, double grad_scale) {
  at::NoGradGuard g;
  const double b1 = opt_.beta1, b2 = opt_.beta2;
  const double bc1 = 1 - std::pow(b1, static_cast<double>(step)), bc2 = 1 - std::pow(b2, static_cast<double>(step));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    auto gr = p.grad();
    if (grad_scale != 1.0) gr.mul_(grad_scale);
    if (opt_.weight_decay > 0 && decays(p)) p.mul_(1 - lr * opt_.weight_decay);
    m1_[i].mul_(b1).add_(gr, 1 - b1);
    m2_[i].mul_(b2).addcmul_(gr, gr, 1 - b2);
    auto denom = (m2_[i].sqrt() / std::sqrt(bc2)).add_(opt_.eps);
    p.addcdiv_(m1_[i], denom, -lr / bc1);
    p.grad().zero_();
  }
}

}  // namespace prefopt
