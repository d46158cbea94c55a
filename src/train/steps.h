// prefopt train: one loss-and-metrics function per objective family, on the
// log-probs a micro-batch was scored to. Pairwise (dpo, orpo, cpo, simpo),
// triple (tpo: pairwise plus the gold NLL), unpaired (kto, bco) and sft.
// Metric names are TRL's (rewards/chosen, logps/rejected, logits/chosen,
// nll_loss, kl, ...); each is the mean over the micro-batch, and metrics of
// empty selections (NaN) are left out.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "loss/objectives.h"
#include "train/config.h"

namespace prefopt {

struct MicroStep {
  at::Tensor loss;                          // scalar, differentiable when training
  std::map<std::string, double> metrics;    // TRL names (means over the micro-batch)
  int64_t tokens = 0;
};

// A micro-batch of B examples with K completions each, scored: [B,K] tensors.
struct ScoredBatch {
  at::Tensor psum;  // summed policy log-probs of the scored tokens (differentiable)
  at::Tensor cnt;   // scored tokens, in psum's dtype
  at::Tensor lsum;  // summed per-token mean logits (detached), for logits/*
  at::Tensor rsum;  // summed reference log-probs; undefined without a reference
};

// Statistics of a whole optimizer step's batch (every micro-batch on every
// rank), used instead of the micro-batch's own when set: KTO's KL reference
// point (before its clamp at 0) and BCO's δ.
struct StepStats {
  std::optional<double> kl, delta;
};

// dpo (with rpo_alpha), cpo / simpo (with cpo_alpha), orpo. `running` is the
// bco_pair running mean; pass a copy to leave the real one unchanged (eval).
MicroStep pairwise_step(const TrainConfig& c, Method m, const ScoredBatch& s, RunningMoments& running);
// tpo: completions chosen, rejected, gold.
MicroStep triple_step(const TrainConfig& c, const ScoredBatch& s);
// kto / bco: completion 0 is the row's own, completion 1 (when K = 2) its KL
// partner's. labels[b] = 1 for desirable rows. udm_weight: BCO's density-ratio
// weight per row of the batch ([B], CPU), or undefined.
MicroStep unpaired_step(const TrainConfig& c, Method m, const ScoredBatch& s, const std::vector<int>& labels,
                        RunningMoments& running, const at::Tensor& udm_weight, const StepStats* stats = nullptr);
MicroStep sft_step(const ScoredBatch& s);

// Parses the objective's strings (loss_type, f_divergence_type) for
// c.method_kind(): an Error listing the options before any work is done.
void check_objective(const TrainConfig& c);

// The family's step for c.method_kind(), then metrics["loss"] and the NaN filter.
MicroStep objective_step(const TrainConfig& c, const ScoredBatch& s, const std::vector<int>& labels,
                         RunningMoments& running, const at::Tensor& udm_weight, const StepStats* stats = nullptr);

}  // namespace prefopt
