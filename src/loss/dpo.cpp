// DPO and its variants: trl/trainer/dpo_trainer.py DPOTrainer.dpo_loss (v0.11.4).
//   sigmoid   DPO, Rafailov et al. 2023 (arXiv 2305.18290); label_smoothing = cDPO
//   robust    Chowdhury et al. 2024 (arXiv 2403.00409)
//   ipo       Azar et al. 2023 (arXiv 2310.12036)
//   hinge     SLiC, Zhao et al. 2023 (arXiv 2305.10425)
//   exo_pair  EXO, Ji et al. 2024 (arXiv 2402.00856)
//   nca_pair  NCA, Chen et al. 2024 (arXiv 2402.05369)
//   bco_pair  BCO, Jung et al. 2024 (arXiv 2404.04656)
//   sppo_hard SPPO, Wu et al. 2024 (arXiv 2405.00675)
//   aot(_pair) AOT, Melnyk et al. 2024 (arXiv 2406.05882)
//   apo_zero/apo_down  APO, D'Oosterlinck et al. 2024 (arXiv 2408.06266)
//   discopop  DiscoPOP, Chris Lu et al. 2024 (arXiv 2406.08414) (TRL ≥ 0.12)
//   f-divergences (js, alpha): Wang et al. 2023 (arXiv 2309.16240)
#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

static const std::pair<const char*, DpoLossType> kDpoTypes[] = {
    {"sigmoid", DpoLossType::Sigmoid},   {"robust", DpoLossType::Robust},     {"ipo", DpoLossType::Ipo},
    {"hinge", DpoLossType::Hinge},       {"exo_pair", DpoLossType::ExoPair},  {"nca_pair", DpoLossType::NcaPair},
    {"bco_pair", DpoLossType::BcoPair},  {"sppo_hard", DpoLossType::SppoHard}, {"aot", DpoLossType::Aot},
    {"aot_pair", DpoLossType::AotPair},  {"apo_zero", DpoLossType::ApoZero},  {"apo_down", DpoLossType::ApoDown},
    {"discopop", DpoLossType::DiscoPop}};

DpoLossType parse_dpo_loss_type(const std::string& s) {
  std::string all;
  for (auto& [n, t] : kDpoTypes) {
    if (s == n) return t;
    all += std::string(all.empty() ? "" : ", ") + n;
  }
  fail("loss_type", "unknown DPO loss_type \"" + s + "\"", "valid: " + all);
}
const char* to_string(DpoLossType t) {
  for (auto& [n, v] : kDpoTypes)
    if (v == t) return n;
  return "?";
}
FDivergence parse_f_divergence(const std::string& s) {
  if (s == "reverse_kl") return FDivergence::ReverseKL;
  if (s == "js_divergence") return FDivergence::JS;
  if (s == "alpha_divergence") return FDivergence::Alpha;
  fail("f_divergence_type", "unknown \"" + s + "\"", "valid: reverse_kl, js_divergence, alpha_divergence");
}

// -logσ(βx)(1-ε) - logσ(-βx)ε
static at::Tensor smoothed_sigmoid(const at::Tensor& x, double beta, double eps) {
  return -at::log_sigmoid(beta * x) * (1 - eps) - at::log_sigmoid(-beta * x) * eps;
}

LossOut dpo_loss(const PairInputs& in, const DpoParams& p, RunningMoments* running) {
  const double beta = p.beta, ls = p.label_smoothing;
  const auto& pc = in.policy_chosen;
  const auto& pr = in.policy_rejected;
  const bool ref = !p.reference_free;
  PREFOPT_CHECK(!ref || (in.ref_chosen.defined() && in.ref_rejected.defined()),
                "dpo_loss: reference log-probs are required unless reference_free");
  at::Tensor rc = ref ? in.ref_chosen : at::zeros_like(pc);
  at::Tensor rr = ref ? in.ref_rejected : at::zeros_like(pr);
  auto chosen_lr = pc - rc;
  auto rejected_lr = pr - rr;
  at::Tensor logits;
  if (p.f_divergence == FDivergence::Alpha) {
    const double a = p.alpha_divergence_coef;
    const double cap = std::log(static_cast<double>(std::numeric_limits<float>::max()));
    auto cap_exp = [&](const at::Tensor& v) { return at::exp(at::clamp_max(v, cap)); };
    logits = (cap_exp(rejected_lr * -a) - cap_exp(chosen_lr * -a)) / a;
  } else {
    logits = (pc - pr) - (rc - rr);
    if (p.f_divergence == FDivergence::JS) logits = logits - (at::softplus(chosen_lr) - at::softplus(rejected_lr));
  }
  LossOut out;
  at::Tensor L;
  switch (p.loss_type) {
    case DpoLossType::Sigmoid: L = smoothed_sigmoid(logits, beta, ls); break;
    case DpoLossType::Robust:
      L = (-at::log_sigmoid(beta * logits) * (1 - ls) + at::log_sigmoid(-beta * logits) * ls) / (1 - 2 * ls);
      break;
    case DpoLossType::ExoPair: {
      const double e = ls == 0 ? 1e-3 : ls;
      L = at::sigmoid(beta * logits) * (at::log_sigmoid(beta * logits) - std::log(1 - e)) +
          at::sigmoid(-beta * logits) * (at::log_sigmoid(-beta * logits) - std::log(e));
      break;
    }
    case DpoLossType::Hinge: L = at::relu(1 - beta * logits); break;
    case DpoLossType::Ipo: L = (logits - 1 / (2 * beta)).pow(2); break;
    case DpoLossType::BcoPair: {
      PREFOPT_CHECK(running, "dpo_loss: bco_pair needs the running reward mean");
      auto cr = beta * chosen_lr, rj = beta * rejected_lr;
      running->update(at::cat({cr, rj}).mean().item<double>());
      const double delta = running->mean;
      L = -at::log_sigmoid(beta * chosen_lr - delta) - at::log_sigmoid(-(beta * rejected_lr - delta));
      out.extra["delta"] = at::scalar_tensor(delta);
      break;
    }
    case DpoLossType::SppoHard:
      L = (chosen_lr - 0.5 / beta).pow(2) + (rejected_lr + 0.5 / beta).pow(2);
      break;
    case DpoLossType::NcaPair: {
      auto cr = chosen_lr * beta, rj = rejected_lr * beta;
      L = -at::log_sigmoid(cr) - 0.5 * at::log_sigmoid(-cr) - 0.5 * at::log_sigmoid(-rj);
      break;
    }
    case DpoLossType::AotPair: {
      auto delta = std::get<0>(at::sort(chosen_lr, 0)) - std::get<0>(at::sort(rejected_lr, 0));
      L = smoothed_sigmoid(delta, beta, ls);
      break;
    }
    case DpoLossType::Aot: {
      auto delta = std::get<0>(at::sort(pc - pr, 0)) - std::get<0>(at::sort(rc - rr, 0));
      L = smoothed_sigmoid(delta, beta, ls);
      break;
    }
    case DpoLossType::ApoZero:
      L = (1 - at::sigmoid(beta * chosen_lr)) + at::sigmoid(beta * rejected_lr);
      break;
    case DpoLossType::ApoDown:
      L = at::sigmoid(beta * chosen_lr) + (1 - at::sigmoid(beta * (chosen_lr - rejected_lr)));
      break;
    case DpoLossType::DiscoPop: {
      auto bl = logits * beta;
      auto mod = at::sigmoid(bl / p.discopop_tau);
      L = -at::log_sigmoid(bl) * (1 - mod) + at::exp(-bl) * mod;
      break;
    }
  }
  out.losses = L;
  // TRL computes the rewards with the reference log-probs whenever they are
  // given, even with reference_free (dpo_trainer.py, dpo_loss tail).
  const auto& rwc = in.ref_chosen.defined() ? in.ref_chosen : rc;
  const auto& rwr = in.ref_rejected.defined() ? in.ref_rejected : rr;
  out.chosen_rewards = (beta * (pc - rwc)).detach();
  out.rejected_rewards = (beta * (pr - rwr)).detach();
  return out;
}

}  // namespace prefopt
