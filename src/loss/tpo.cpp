// Triple-PO (Saeidi et al. 2024, arXiv 2405.16681); matches the official
// repo's utils/tpo_trainer.py (tpo_loss + get_batch_metrics).
#include <ATen/ATen.h>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

TpoLossType parse_tpo_loss_type(const std::string& s) {
  if (s == "sigmoid") return TpoLossType::Sigmoid;
  if (s == "hinge") return TpoLossType::Hinge;
  fail("loss_type", "unknown TPO loss_type \"" + s + "\"", "valid: sigmoid, hinge");
}

LossOut tpo_loss(const PairInputs& in, const at::Tensor& gold_nll, const TpoParams& p) {
  auto logits = in.policy_chosen - in.policy_rejected;
  at::Tensor pref;
  switch (p.loss_type) {
    case TpoLossType::Sigmoid: pref = -at::log_sigmoid(p.beta * logits); break;
    case TpoLossType::Hinge: pref = at::relu(1 - p.beta * logits); break;
  }
  LossOut out;
  out.losses = p.alpha * gold_nll + pref;
  out.chosen_rewards = (p.beta * in.policy_chosen).detach();
  out.rejected_rewards = (p.beta * in.policy_rejected).detach();
  out.extra["nll_loss"] = gold_nll.mean().detach();
  return out;
}

}  // namespace prefopt
