// prefopt train: the training data as the config asks for it. The loading
// options a TrainConfig implies, the seeded eval split (eval_split), the data
// order per epoch, KTO's KL pairs, and the benchmarks' synthetic pairs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "train/config.h"

namespace prefopt {

// max_length, max_prompt_length, max_completion_length, truncation_mode,
// mask_tool_observations.
DataOptions data_options(const TrainConfig& c);

// Moves a held-out fraction of `train` into the returned eval set: the rows
// whose place in a Fisher-Yates order (prefopt's Rng seeded by seed ^
// 0x5eed5eed) is among the first max(1, frac * rows). Both sets keep file
// order; the eval set's path is "<path> (eval split)". frac must be in (0, 1)
// and leave at least one training row (Error otherwise).
Dataset split_eval(Dataset& train, double frac, int64_t seed);

// The data order of epoch `epoch`: a Fisher-Yates shuffle of 0..n-1 over
// prefopt's portable Rng seeded by (seed, epoch).
std::vector<size_t> epoch_order(size_t n, int64_t seed, int64_t epoch);

// KTO's KL pairs (TRL _get_kl_dataset): inside consecutive chunks of
// `batch_size` rows in file order, row i is paired with the previous row of
// its chunk (rotation by one); the result is that row's index per row.
std::vector<int64_t> kl_pairs(const Dataset& ds, int64_t batch_size);

// Benchmarks' data: n seeded pre-tokenized pairs of uniform random ids below
// `vocab`, prompts of prompt_len tokens, each completion comp_min..comp_max
// tokens, every completion token trained.
struct SyntheticPairs {
  int64_t n = 8, vocab = 32000, prompt_len = 256, comp_min = 32, comp_max = 96;
  uint64_t seed = 20241;
};
Dataset synthetic_pairs(const SyntheticPairs& o, const std::string& name);

}  // namespace prefopt
