// Unpaired objectives: KTO (trl KTOTrainer.kto_loss) and BCO (trl
// BCOTrainer.bco_loss + _get_udm_weight), v0.11.4.
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

LossOut bco_loss(const UnpairedInputs& in, const BcoParams& p, RunningMoments& running,
                 const at::Tensor& rejected_weight) {
  const double beta = p.beta;
  const at::Tensor& any = in.policy_chosen.defined() ? in.policy_chosen : in.policy_rejected;
  at::Tensor cr = empty_like_opts(any), rr = empty_like_opts(any);
  if (in.policy_chosen.defined() && in.policy_chosen.numel() > 0) cr = beta * (in.policy_chosen - in.ref_chosen);
  if (in.policy_rejected.defined() && in.policy_rejected.numel() > 0) rr = beta * (in.policy_rejected - in.ref_rejected);
  running.update(at::cat({cr, rr}).mean().detach().item<double>());
  const double delta = running.mean;
  auto cl = -at::log_sigmoid(cr - delta);
  auto rl = -at::log_sigmoid(-(rr - delta));
  if (rejected_weight.defined()) rl = rl * rejected_weight.to(rl.device(), rl.scalar_type());
  LossOut out;
  out.losses = at::cat({cl, rl});
  out.chosen_rewards = cr.detach();
  out.rejected_rewards = rr.detach();
  out.extra["delta"] = at::scalar_tensor(delta);
  return out;
}

// Class-balanced L2 logistic regression (sklearn's LogisticRegression(C=1,
// class_weight="balanced") objective), Newton's method on [x, 1].
void DensityRatioClassifier::fit(const at::Tensor& pos, const at::Tensor& neg, int iters) {
  at::NoGradGuard ng;
  PREFOPT_CHECK(pos.size(0) > 0 && neg.size(0) > 0, "BCO UDM: needs desirable and undesirable prompt embeddings");
  auto X = at::cat({pos, neg}).to(at::kDouble).cpu();
  const int64_t n = X.size(0), E = X.size(1);
  X = at::cat({X, at::ones({n, 1}, X.options())}, 1);
  auto y = at::cat({at::ones({pos.size(0)}, X.options()), at::zeros({neg.size(0)}, X.options())});
  // balanced weights: n / (2 * n_class)
  auto sw = at::cat({at::full({pos.size(0)}, n / (2.0 * pos.size(0)), X.options()),
                     at::full({neg.size(0)}, n / (2.0 * neg.size(0)), X.options())});
  auto reg = at::ones({E + 1}, X.options());
  reg[E] = 0;  // no penalty on the intercept
  w = at::zeros({E + 1}, X.options());
  for (int it = 0; it < iters; ++it) {
    auto p = at::sigmoid(at::matmul(X, w));
    auto grad = at::matmul(X.t(), sw * (p - y)) + reg * w;
    auto Hd = sw * p * (1 - p);
    auto Hm = at::matmul(X.t() * Hd.unsqueeze(0), X) + at::diag(reg) + 1e-9 * at::eye(E + 1, X.options());
    auto step = at::linalg_solve(Hm, grad);
    w = w - step;
    if (step.abs().max().item<double>() < 1e-10) break;
  }
}

at::Tensor DensityRatioClassifier::prob_desirable(const at::Tensor& emb) const {
  PREFOPT_CHECK(w.defined(), "BCO UDM classifier used before fit()");
  auto X = emb.to(at::kDouble).cpu();
  X = at::cat({X, at::ones({X.size(0), 1}, X.options())}, 1);
  return at::sigmoid(at::matmul(X, w)).to(at::kFloat).to(emb.device());
}

at::Tensor DensityRatioClassifier::udm_weight(const at::Tensor& emb, double min_ratio, double max_ratio) const {
  auto p = prob_desirable(emb);
  return (p / (1 - p + 1e-8)).clamp(min_ratio, max_ratio);
}

}  // namespace prefopt
