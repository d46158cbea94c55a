#include "diffusion/losses.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace prefopt::diffusion {

at::Tensor per_example_mse(const at::Tensor& pred, const at::Tensor& target) {
  PREFOPT_ASSERT(pred.sizes() == target.sizes() && pred.dim() >= 1, "per_example_mse: shapes differ");
  return (pred - target).pow(2).reshape({pred.size(0), -1}).mean(1);
}

PrefLoss diffusion_dpo_loss(const at::Tensor& model_w, const at::Tensor& model_l, const at::Tensor& ref_w,
                            const at::Tensor& ref_l, double beta) {
  PREFOPT_ASSERT(model_w.sizes() == model_l.sizes() && ref_w.sizes() == model_w.sizes() &&
                     ref_l.sizes() == model_w.sizes(),
                 "diffusion_dpo_loss: shapes differ");
  const auto inside = -0.5 * beta * ((model_w - ref_w.detach()) - (model_l - ref_l.detach()));
  PrefLoss out;
  out.loss = -at::log_sigmoid(inside).mean();
  const auto d = inside.detach();
  out.accuracy = (d > 0).to(at::kDouble).mean().item<double>();
  out.margin = d.mean().item<double>();
  return out;
}

PrefLoss diffusion_kto_loss(const at::Tensor& model, const at::Tensor& ref, const at::Tensor& labels, double beta,
                            double desirable_weight, double undesirable_weight) {
  PREFOPT_ASSERT(model.sizes() == ref.sizes() && labels.sizes() == model.sizes(), "diffusion_kto_loss: shapes differ");
  const auto g = ref.detach() - model;  // implicit reward: how much lower the policy's error is
  const auto z0 = g.detach().mean().clamp_min(0.0);
  const auto lab = labels.to(model.scalar_type());
  const auto sign = 2.0 * lab - 1.0;
  const auto h = at::sigmoid(sign * beta * (g - z0));
  const auto w = desirable_weight * lab + undesirable_weight * (1.0 - lab);
  PrefLoss out;
  out.loss = (w * (1.0 - h)).mean();
  out.accuracy = ((sign * (g - z0)).detach() > 0).to(at::kDouble).mean().item<double>();
  out.margin = g.detach().mean().item<double>();
  return out;
}

PrefLoss tdpo_loss(const at::Tensor& eps_pos, const at::Tensor& eps_neg, const at::Tensor& ref_pos,
                   const at::Tensor& ref_neg, const at::Tensor& noise, double beta) {
  return diffusion_dpo_loss(per_example_mse(eps_pos, noise), per_example_mse(eps_neg, noise),
                            per_example_mse(ref_pos, noise), per_example_mse(ref_neg, noise), beta);
}

PrefLoss tkto_loss(const at::Tensor& eps_pos, const at::Tensor& eps_neg, const at::Tensor& ref_pos,
                   const at::Tensor& ref_neg, const at::Tensor& noise, double beta, double desirable_weight,
                   double undesirable_weight) {
  const auto model = at::cat({per_example_mse(eps_pos, noise), per_example_mse(eps_neg, noise)});
  const auto ref = at::cat({per_example_mse(ref_pos, noise), per_example_mse(ref_neg, noise)});
  const int64_t b = eps_pos.size(0);
  const auto labels = at::cat({at::ones({b}, model.options()), at::zeros({b}, model.options())});
  return diffusion_kto_loss(model, ref, labels, beta, desirable_weight, undesirable_weight);
}

}  // namespace prefopt::diffusion
