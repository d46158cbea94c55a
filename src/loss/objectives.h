// prefopt loss: the objectives. Every function is small and pure: summed (or
// averaged) sequence log-probs in, per-example losses and detached rewards out
// (torchtune's signature). Each cites its paper and the TRL 0.11.4 function it
// matches; tests compare against TRL's own outputs (trl_loss_vectors.json).
//
// Shapes: B examples. All inputs [B] fp32 tensors.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>

namespace prefopt {

struct PairInputs {
  at::Tensor policy_chosen, policy_rejected;  // [B] log-probs (summed, or averaged for avg-based methods)
  at::Tensor ref_chosen, ref_rejected;        // [B]; undefined for reference-free methods
  at::Tensor chosen_len, rejected_len;        // [B] token counts (optional; for length-normalised metrics)
};

struct LossOut {
  at::Tensor losses;                            // [B] per example (the trainer takes the mean)
  at::Tensor chosen_rewards, rejected_rewards;  // [B] detached
  std::map<std::string, at::Tensor> extra;      // e.g. "log_odds_ratio", "log_odds_chosen", "kl", "delta"
};

// ---------------------------------------------------------------- DPO family
// trl/trainer/dpo_trainer.py DPOTrainer.dpo_loss (v0.11.4).
enum class DpoLossType { Sigmoid, Robust, Ipo, Hinge, ExoPair, NcaPair, BcoPair, SppoHard, Aot, AotPair, ApoZero, ApoDown, DiscoPop };
DpoLossType parse_dpo_loss_type(const std::string& s);  // TRL's strings; error lists them
const char* to_string(DpoLossType t);
enum class FDivergence { ReverseKL, JS, Alpha };
FDivergence parse_f_divergence(const std::string& s);  // reverse_kl | js_divergence | alpha_divergence

// Running mean of rewards for bco_pair / BCO (trl.trainer.utils.RunningMoments).
struct RunningMoments {
  double mean = 0.0, var = 1.0, count = 1e-24;
  void update(double batch_mean_value);  // TRL feeds one scalar (the batch mean) per step
};

struct DpoParams {
  DpoLossType loss_type = DpoLossType::Sigmoid;
  double beta = 0.1;
  double label_smoothing = 0.0;
  bool reference_free = false;
  FDivergence f_divergence = FDivergence::ReverseKL;
  double alpha_divergence_coef = 1.0;
  double discopop_tau = 0.05;
};
// `running` is needed (and updated) only by bco_pair.
LossOut dpo_loss(const PairInputs& in, const DpoParams& p, RunningMoments* running = nullptr);

// RPO / DPO+NLL (Pang et al. 2024, arXiv 2404.19733), CPO's and ORPO's NLL term:
// token-weighted mean NLL over the batch, -Σ_b logp_sum[b] / Σ_b count[b], as
// TRL's cross_entropy over all chosen tokens (dpo_trainer.py concatenated_forward
// nll_loss). The trainer adds rpo_alpha * this (DPO), cpo_alpha * this (CPO) or
// minimises this − mean(orpo losses) (ORPO).
// Call it qualified, prefopt::nll_loss: with at::Tensor arguments ADL also
// finds at::nll_loss and an unqualified call is ambiguous.
at::Tensor nll_loss(const at::Tensor& logp_sum, const at::Tensor& token_count);

// ---------------------------------------------------------------- KTO, BCO
// Unpaired rows: chosen = desirable (label true), rejected = undesirable.
struct UnpairedInputs {
  at::Tensor policy_chosen, ref_chosen;      // [Bc]
  at::Tensor policy_rejected, ref_rejected;  // [Br]
  at::Tensor policy_kl, ref_kl;              // [Bkl] log-probs of mismatched (prompt, completion) pairs
};
enum class KtoLossType { Kto, ApoZeroUnpaired };
KtoLossType parse_kto_loss_type(const std::string& s);
struct KtoParams {
  KtoLossType loss_type = KtoLossType::Kto;
  double beta = 0.1, desirable_weight = 1.0, undesirable_weight = 1.0;
};
// KTO (Ethayarajh et al. 2024, arXiv 2402.01306); trl KTOTrainer.kto_loss.
// losses = cat(desirable_weight * chosen losses, undesirable_weight * rejected losses);
// extra["kl"] = clamp(mean(policy_kl - ref_kl), min 0), detached.
LossOut kto_loss(const UnpairedInputs& in, const KtoParams& p);

struct BcoParams {
  double beta = 0.1;
  double min_density_ratio = 0.5, max_density_ratio = 10.0;
  // δ decided by the caller (over a whole global batch): used as is, and
  // `running` is left alone. Unset: TRL's per-batch update below.
  std::optional<double> delta;
};
// BCO (Jung et al. 2024, arXiv 2404.04656); trl BCOTrainer.bco_loss. Updates
// `running` with the batch reward mean and uses its mean as δ (unless p.delta). `rejected_weight`
// (UDM density-ratio weights, [Br]) may be undefined.
LossOut bco_loss(const UnpairedInputs& in, const BcoParams& p, RunningMoments& running,
                 const at::Tensor& rejected_weight = at::Tensor());

// BCO underlying-distribution matching: a logistic-regression classifier of
// prompt embeddings (desirable prompts = 1, undesirable = 0), class-balanced,
// L2 (C = 1, as sklearn's LogisticRegression defaults), fitted by Newton steps.
struct DensityRatioClassifier {
  at::Tensor w;  // [E+1] (last entry: bias)
  void fit(const at::Tensor& desirable_emb, const at::Tensor& undesirable_emb, int iters = 25);
  at::Tensor prob_desirable(const at::Tensor& emb) const;  // [N]
  // TRL's _get_udm_weight: clamp(p / (1 - p + 1e-8), min_ratio, max_ratio).
  at::Tensor udm_weight(const at::Tensor& emb, double min_ratio, double max_ratio) const;
};

// ---------------------------------------------------------------- reference-free
enum class CpoLossType { Sigmoid, Hinge, Ipo, Simpo };
CpoLossType parse_cpo_loss_type(const std::string& s);
struct CpoParams {
  CpoLossType loss_type = CpoLossType::Sigmoid;
  double beta = 0.1, label_smoothing = 0.0, simpo_gamma = 0.5;
};
// CPO (Xu et al. 2024, arXiv 2401.08417) and SimPO (Meng et al. 2024, arXiv
// 2405.14734, loss_type Simpo: length-normalised inputs, margin γ); trl
// CPOTrainer.cpo_loss. Uses policy log-probs only; rewards = β·logp.
LossOut cpo_loss(const PairInputs& in, const CpoParams& p);

// ORPO (Hong et al. 2024, arXiv 2403.07691); trl ORPOTrainer.odds_ratio_loss.
// Inputs are length-averaged log-probs. losses = β·logσ(log odds ratio) (≤ 0):
// the trainer minimises nll − mean(losses). extra: "log_odds_ratio", "log_odds_chosen".
LossOut orpo_loss(const PairInputs& in, double beta);

// Triple-PO (Saeidi et al. 2024, "Triple Preference Optimization: Achieving
// Better Alignment in a Single Step Optimization", arXiv 2405.16681; official
// repo sahsaeedi/triple-preference-optimization, utils/tpo_trainer.py tpo_loss +
// get_batch_metrics). No reference model, no SFT stage:
//   L = α · NLL(gold | x) + mean_b ℓ(β · (log π(y_w|x) − log π(y_l|x)))
//   ℓ = −log σ(·) (sigmoid) or relu(1 − ·) (hinge)
// The official trainer feeds SUMMED chosen/rejected log-probs and takes the gold
// NLL as the token-mean cross-entropy over all gold tokens of the batch; to
// match it, pass gold_nll = that batch scalar broadcast to [B] (or per-example
// mean NLLs, [B], for an example-weighted variant). Rewards = β·policy logps.
// extra["nll_loss"] = mean(gold_nll).
enum class TpoLossType { Sigmoid, Hinge };
TpoLossType parse_tpo_loss_type(const std::string& s);  // sigmoid | hinge
struct TpoParams {
  TpoLossType loss_type = TpoLossType::Sigmoid;
  double beta = 0.1, alpha = 1.0;
};
LossOut tpo_loss(const PairInputs& in, const at::Tensor& gold_nll, const TpoParams& p);

// SFT: mean per-token NLL per example ([B]) from summed log-probs and counts.
at::Tensor sft_loss(const at::Tensor& logp_sum, const at::Tensor& token_count);

}  // namespace prefopt
