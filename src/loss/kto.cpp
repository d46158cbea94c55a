// KTO (Ethayarajh et al. 2024, arXiv 2402.01306) and APO-zero unpaired:
// trl KTOTrainer.kto_loss, v0.11.4.
#include <ATen/ATen.h>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

KtoLossType parse_kto_loss_type(const std::string& s) {
  if (s == "kto") return KtoLossType::Kto;
  if (s == "apo_zero_unpaired") return KtoLossType::ApoZeroUnpaired;
  fail("loss_type", "unknown KTO loss_type \"" + s + "\"", "valid: kto, apo_zero_unpaired");
}

static at::Tensor empty_like_opts(const at::Tensor& ref) { return at::zeros({0}, ref.options()); }

LossOut kto_loss(const UnpairedInputs& in, const KtoParams& p) {
  const double beta = p.beta;
  const at::Tensor& any = in.policy_chosen.defined() ? in.policy_chosen : in.policy_rejected;
  at::Tensor kl = at::zeros({}, any.options());
  if (p.loss_type == KtoLossType::Kto && in.policy_kl.defined() && in.policy_kl.numel() > 0)
    kl = (in.policy_kl - in.ref_kl).mean().clamp_min(0).detach();
  LossOut out;
  at::Tensor cl = empty_like_opts(any), rl = empty_like_opts(any);
  out.chosen_rewards = empty_like_opts(any), out.rejected_rewards = empty_like_opts(any);
  if (in.policy_chosen.defined() && in.policy_chosen.numel() > 0) {
    auto lr = in.policy_chosen - in.ref_chosen;
    cl = p.loss_type == KtoLossType::Kto ? 1 - at::sigmoid(beta * (lr - kl)) : 1 - at::sigmoid(beta * lr);
    out.chosen_rewards = (beta * lr).detach();
  }
  if (in.policy_rejected.defined() && in.policy_rejected.numel() > 0) {
    auto lr = in.policy_rejected - in.ref_rejected;
    rl = p.loss_type == KtoLossType::Kto ? 1 - at::sigmoid(beta * (kl - lr)) : at::sigmoid(beta * lr);
    out.rejected_rewards = (beta * lr).detach();
  }
  out.losses = at::cat({p.desirable_weight * cl, p.undesirable_weight * rl});
  out.extra["kl"] = kl;
  return out;
}

}  // namespace prefopt
