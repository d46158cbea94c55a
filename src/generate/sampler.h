// prefopt generate: batched sampling with temperature, top-k, top-p, a seed,
// EOS ids and a token budget. The n samples of one prompt share ONE prompt
// prefill: the KV cache is expanded to n rows, not recomputed. Different
// prompts batch with left padding. Draws come from the portable core Rng (one
// stream per (prompt, sample)), so results reproduce across libtorch versions.
#pragma once
#include <cstdint>
#include <vector>

namespace prefopt {

class CausalLM;

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  int top_k = 0;             // 0 = off
  double top_p = 1.0;        // 1 = off
  uint64_t seed = 0;
  int max_new_tokens = 256;
  std::vector<int64_t> eos_ids;
  int n = 1;
  // false: each of the P*n rows runs its own prompt prefill (the naive path;
  // kept as the test oracle and benchmark baseline).
  bool share_prefill = true;
};

struct Sample {
  std::vector<int64_t> ids;  // new tokens only (the EOS included when hit)
  bool hit_eos = false;
};

// The distribution HF's warpers give (order: temperature, top-k, top-p).
// temperature must be > 0. Returns probabilities over the vocabulary.
std::vector<double> filtered_distribution(const std::vector<float>& logits, double temperature, int top_k,
                                          double top_p);

// result[prompt][sample]
std::vector<std::vector<Sample>> sample(const CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                        const SamplingParams& p);

}  // namespace prefopt
