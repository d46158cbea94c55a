#include "train/steps.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace prefopt {

namespace {

double mean_of(const at::Tensor& t) { return t.numel() ? t.mean().item<double>() : std::nan(""); }

// logits/* as TRL's logits.mean() over the scored positions: the sum of the
// per-token mean logits over the selected tokens / their count.
double tok_mean(const at::Tensor& s, const at::Tensor& n) {
  return n.numel() ? (s.sum() / n.sum().clamp_min(1)).item<double>() : std::nan("");
}

at::Tensor col(const at::Tensor& t, int64_t k) { return t.select(1, k); }

void pair_metrics(std::map<std::string, double>& M, const LossOut& lo, const at::Tensor& pc, const at::Tensor& pr,
                  const ScoredBatch& s) {
  M["rewards/chosen"] = mean_of(lo.chosen_rewards);
  M["rewards/rejected"] = mean_of(lo.rejected_rewards);
  M["rewards/accuracies"] = mean_of((lo.chosen_rewards > lo.rejected_rewards).to(at::kFloat));
  M["rewards/margins"] = mean_of(lo.chosen_rewards - lo.rejected_rewards);
  M["logps/chosen"] = mean_of(pc.detach());
  M["logps/rejected"] = mean_of(pr.detach());
  M["logits/chosen"] = tok_mean(col(s.lsum, 0), col(s.cnt, 0));
  M["logits/rejected"] = tok_mean(col(s.lsum, 1), col(s.cnt, 1));
}

// Chosen / rejected log-probs, summed or (avg) averaged over their tokens.
PairInputs policy_pair(const ScoredBatch& s, bool avg) {
  PairInputs in;
  in.policy_chosen = avg ? col(s.psum, 0) / col(s.cnt, 0) : col(s.psum, 0);
  in.policy_rejected = avg ? col(s.psum, 1) / col(s.cnt, 1) : col(s.psum, 1);
  return in;
}

MicroStep dpo_step(const TrainConfig& c, const ScoredBatch& s, RunningMoments& running) {
  MicroStep out;
  DpoParams p;
  p.loss_type = parse_dpo_loss_type(c.resolved_loss_type());
  p.beta = c.beta, p.label_smoothing = c.label_smoothing, p.reference_free = c.reference_free;
  p.f_divergence = parse_f_divergence(c.f_divergence_type);
  p.alpha_divergence_coef = c.f_alpha_divergence_coef, p.discopop_tau = c.discopop_tau;
  const bool avg = p.loss_type == DpoLossType::Ipo;  // TRL averages log-probs for IPO
  PairInputs in = policy_pair(s, avg);
  if (s.rsum.defined()) {
    in.ref_chosen = avg ? col(s.rsum, 0) / col(s.cnt, 0) : col(s.rsum, 0);
    in.ref_rejected = avg ? col(s.rsum, 1) / col(s.cnt, 1) : col(s.rsum, 1);
  } else {
    in.ref_chosen = at::zeros_like(in.policy_chosen), in.ref_rejected = at::zeros_like(in.policy_rejected);
  }
  in.chosen_len = col(s.cnt, 0), in.rejected_len = col(s.cnt, 1);
  LossOut lo = dpo_loss(in, p, &running);
  out.loss = lo.losses.mean();
  if (c.rpo_alpha > 0) {
    auto nll = prefopt::nll_loss(col(s.psum, 0), col(s.cnt, 0));
    out.metrics["nll_loss"] = nll.item<double>();
    out.loss = out.loss + c.rpo_alpha * nll;
  }
  pair_metrics(out.metrics, lo, in.policy_chosen, in.policy_rejected, s);
  return out;
}

MicroStep cpo_step(const TrainConfig& c, const ScoredBatch& s) {
  MicroStep out;
  CpoParams p;
  p.loss_type = parse_cpo_loss_type(c.resolved_loss_type());
  p.beta = c.beta, p.label_smoothing = c.label_smoothing, p.simpo_gamma = c.simpo_gamma;
  const bool avg = p.loss_type == CpoLossType::Ipo || p.loss_type == CpoLossType::Simpo;
  PairInputs in = policy_pair(s, avg);
  LossOut lo = cpo_loss(in, p);
  out.loss = lo.losses.mean();
  auto nll = prefopt::nll_loss(col(s.psum, 0), col(s.cnt, 0));
  out.metrics["nll_loss"] = nll.item<double>();
  if (c.resolved_cpo_alpha() > 0) out.loss = out.loss + c.resolved_cpo_alpha() * nll;
  pair_metrics(out.metrics, lo, in.policy_chosen, in.policy_rejected, s);
  return out;
}

MicroStep orpo_step(const TrainConfig& c, const ScoredBatch& s) {
  MicroStep out;
  PairInputs in = policy_pair(s, true);
  LossOut lo = orpo_loss(in, c.beta);
  auto nll = prefopt::nll_loss(col(s.psum, 0), col(s.cnt, 0));
  out.loss = nll - lo.losses.mean();
  out.metrics["nll_loss"] = nll.item<double>();
  for (auto& [k, v] : lo.extra) out.metrics[k] = mean_of(v.detach());
  pair_metrics(out.metrics, lo, in.policy_chosen, in.policy_rejected, s);
  return out;
}

at::Tensor select_rows(const at::Tensor& t, const std::vector<int64_t>& v) {
  return t.index_select(0, at::tensor(v, at::kLong).to(t.device()));
}

}  // namespace

MicroStep pairwise_step(const TrainConfig& c, Method m, const ScoredBatch& s, RunningMoments& running) {
  switch (m) {
    case Method::Dpo: return dpo_step(c, s, running);
    case Method::Cpo:
    case Method::Simpo: return cpo_step(c, s);
    case Method::Orpo: return orpo_step(c, s);
    default: PREFOPT_CHECK(false, "pairwise_step: {} is not a pairwise method", to_string(m));
  }
  return {};
}

MicroStep triple_step(const TrainConfig& c, const ScoredBatch& s) {
  MicroStep out;
  TpoParams p;
  p.loss_type = parse_tpo_loss_type(c.resolved_loss_type());
  p.beta = c.beta, p.alpha = c.tpo_alpha;
  PairInputs in = policy_pair(s, false);
  auto gold = prefopt::nll_loss(col(s.psum, 2), col(s.cnt, 2));
  LossOut lo = tpo_loss(in, gold.expand({s.psum.size(0)}), p);
  out.loss = lo.losses.mean();
  out.metrics["nll_loss"] = gold.item<double>();
  pair_metrics(out.metrics, lo, in.policy_chosen, in.policy_rejected, s);
  return out;
}

MicroStep unpaired_step(const TrainConfig& c, Method m, const ScoredBatch& s, const std::vector<int>& labels,
                        RunningMoments& running, const at::Tensor& udm_weight, const StepStats* stats) {
  PREFOPT_CHECK(m == Method::Kto || m == Method::Bco, "unpaired_step: {} is not kto or bco", to_string(m));
  MicroStep out;
  auto& M = out.metrics;
  const int64_t B = s.psum.size(0), K = s.psum.size(1);
  std::vector<int64_t> ci, ri;
  for (int64_t b = 0; b < B; ++b) (labels[b] == 1 ? ci : ri).push_back(b);
  UnpairedInputs in;
  at::Tensor p0 = col(s.psum, 0), r0 = s.rsum.defined() ? col(s.rsum, 0) : at::zeros_like(p0);
  in.policy_chosen = select_rows(p0, ci), in.ref_chosen = select_rows(r0, ci);
  in.policy_rejected = select_rows(p0, ri), in.ref_rejected = select_rows(r0, ri);
  if (K > 1) {
    in.policy_kl = col(s.psum, 1).detach();
    in.ref_kl = s.rsum.defined() ? col(s.rsum, 1) : at::zeros_like(in.policy_kl);
  } else {
    in.policy_kl = at::zeros({0}, p0.options()), in.ref_kl = at::zeros({0}, p0.options());
  }
  if (stats && stats->kl && K > 1) {  // the step's KL point: a single "row" holding it
    in.policy_kl = at::full({1}, *stats->kl, p0.options()).detach();
    in.ref_kl = at::zeros({1}, p0.options());
  }
  LossOut lo;
  if (m == Method::Kto) {
    KtoParams p;
    p.loss_type = parse_kto_loss_type(c.resolved_loss_type());
    p.beta = c.beta, p.desirable_weight = c.desirable_weight, p.undesirable_weight = c.undesirable_weight;
    lo = kto_loss(in, p);
  } else {
    BcoParams p;
    p.beta = c.beta, p.min_density_ratio = c.min_density_ratio, p.max_density_ratio = c.max_density_ratio;
    if (stats) p.delta = stats->delta;
    at::Tensor w;
    if (udm_weight.defined()) w = udm_weight.index_select(0, at::tensor(ri, at::kLong)).to(p0.device());
    lo = bco_loss(in, p, running, w);
  }
  out.loss = lo.losses.numel() ? lo.losses.mean() : (s.psum.sum() * 0.0);
  M["rewards/chosen"] = mean_of(lo.chosen_rewards);
  M["rewards/rejected"] = mean_of(lo.rejected_rewards);
  if (!ci.empty() && !ri.empty()) M["rewards/margins"] = M["rewards/chosen"] - M["rewards/rejected"];
  M["logps/chosen"] = mean_of(in.policy_chosen.detach());
  M["logps/rejected"] = mean_of(in.policy_rejected.detach());
  M["logits/chosen"] = tok_mean(select_rows(col(s.lsum, 0), ci), select_rows(col(s.cnt, 0), ci));
  M["logits/rejected"] = tok_mean(select_rows(col(s.lsum, 0), ri), select_rows(col(s.cnt, 0), ri));
  for (auto& [k, v] : lo.extra) M[k] = mean_of(v.detach().to(at::kDouble));
  return out;
}

MicroStep sft_step(const ScoredBatch& s) {
  MicroStep out;
  out.loss = prefopt::nll_loss(col(s.psum, 0), col(s.cnt, 0));
  out.metrics["logps/chosen"] = mean_of(col(s.psum, 0).detach() / col(s.cnt, 0));
  return out;
}

void check_objective(const TrainConfig& c) {
  const std::string lt = c.resolved_loss_type();
  switch (c.method_kind()) {
    case Method::Dpo: (void)parse_dpo_loss_type(lt), (void)parse_f_divergence(c.f_divergence_type); break;
    case Method::Kto: (void)parse_kto_loss_type(lt); break;
    case Method::Cpo:
    case Method::Simpo: (void)parse_cpo_loss_type(lt); break;
    case Method::Tpo: (void)parse_tpo_loss_type(lt); break;
    case Method::Bco:
    case Method::Orpo:
    case Method::Sft: break;
  }
}

MicroStep objective_step(const TrainConfig& c, const ScoredBatch& s, const std::vector<int>& labels,
                         RunningMoments& running, const at::Tensor& udm_weight, const StepStats* stats) {
  const Method m = c.method_kind();
  MicroStep out;
  switch (m) {
    case Method::Dpo:
    case Method::Orpo:
    case Method::Cpo:
    case Method::Simpo: out = pairwise_step(c, m, s, running); break;
    case Method::Tpo: out = triple_step(c, s); break;
    case Method::Kto:
    case Method::Bco: out = unpaired_step(c, m, s, labels, running, udm_weight, stats); break;
    case Method::Sft: out = sft_step(s); break;
  }
  auto& M = out.metrics;
  for (auto it = M.begin(); it != M.end();) it = std::isfinite(it->second) ? std::next(it) : M.erase(it);
  M["loss"] = out.loss.item<double>();
  return out;
}

}  // namespace prefopt
