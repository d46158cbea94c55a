// Reference-free pair objectives, trl v0.11.4: CPO (Xu et al. 2024, arXiv
// 2401.08417) and SimPO (Meng et al. 2024, arXiv 2405.14734) via
// CPOTrainer.cpo_loss; ORPO (Hong et al. 2024, arXiv 2403.07691) via
// ORPOTrainer.odds_ratio_loss.
#include <ATen/ATen.h>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

CpoLossType parse_cpo_loss_type(const std::string& s) {
  if (s == "sigmoid") return CpoLossType::Sigmoid;
  if (s == "hinge") return CpoLossType::Hinge;
  if (s == "ipo") return CpoLossType::Ipo;
  if (s == "simpo") return CpoLossType::Simpo;
  fail("loss_type", "unknown CPO loss_type \"" + s + "\"", "valid: sigmoid, hinge, ipo, simpo");
}

LossOut cpo_loss(const PairInputs& in, const CpoParams& p) {
  const double beta = p.beta, ls = p.label_smoothing;
  auto logits = in.policy_chosen - in.policy_rejected;
  at::Tensor L;
  switch (p.loss_type) {
    case CpoLossType::Simpo:
      logits = logits - p.simpo_gamma / beta;
      [[fallthrough]];
    case CpoLossType::Sigmoid:
      L = -at::log_sigmoid(beta * logits) * (1 - ls) - at::log_sigmoid(-beta * logits) * ls;
      break;
    case CpoLossType::Hinge: L = at::relu(1 - beta * logits); break;
    case CpoLossType::Ipo: L = (logits - 1 / (2 * beta)).pow(2); break;
  }
  LossOut out;
  out.losses = L;
  out.chosen_rewards = (beta * in.policy_chosen).detach();
  out.rejected_rewards = (beta * in.policy_rejected).detach();
  return out;
}

LossOut orpo_loss(const PairInputs& in, double beta) {
  const auto& pc = in.policy_chosen;
  const auto& pr = in.policy_rejected;
  auto log_odds = (pc - pr) - (at::log1p(-at::exp(pc)) - at::log1p(-at::exp(pr)));
  auto ratio = at::log_sigmoid(log_odds);
  LossOut out;
  out.losses = beta * ratio;
  out.chosen_rewards = (beta * pc).detach();
  out.rejected_rewards = (beta * pr).detach();
  out.extra["log_odds_ratio"] = ratio.mean().detach();
  out.extra["log_odds_chosen"] = log_odds.mean().detach();
  return out;
}

}  // namespace prefopt
