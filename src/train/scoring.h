// prefopt train: scoring rows of a dataset under a model. The packed-batch
// items of a set of rows, the forward pass to summed log-probs per
// (row, completion), and the reference log-probs precomputed once and cached
// beside the data (precompute_ref_log_probs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "data/dataset.h"
#include "loss/logps.h"
#include "train/batch.h"
#include "train/config.h"

namespace prefopt {

class CausalLM;

// Rows per chunk of the log-prob head: the configured value, or a [rows, V]
// fp32 logits block of about 64 MB.
int64_t chunk_rows(const TrainConfig& c, const CausalLM& m);

// One packed-batch item per row of `idx`: its completions, plus the KTO KL
// partner's completion when `kl_partner` is not empty (row i's KL completion
// is row kl_partner[i]'s completion 0).
std::vector<BatchItem> batch_items(const Dataset& ds, const std::vector<int64_t>& kl_partner,
                                   const std::vector<size_t>& idx);

// Summed log-probs per segment of a packed batch under `model`.
SeqLogps score(const CausalLM& model, const PackedBatch& pb, int64_t segments, int64_t chunk, bool full_vocab);

// [rows, K] reference log-prob sums of every row of ds, read from
// <data>.ref-logps-<hash>.safetensors when present (the hash covers the data,
// the reference weights, the batch size and K), else computed in batches of
// per_device_eval_batch_size and written there (to output_dir when the data's
// directory is not writable).
at::Tensor reference_logps(const TrainConfig& c, const CausalLM& ref, const Dataset& ds,
                           const std::vector<int64_t>& kl_partner, const std::string& source_dir);

}  // namespace prefopt
