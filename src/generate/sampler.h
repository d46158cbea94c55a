// prefopt generate: batched sampling with temperature, top-k, top-p, a seed,
// EOS ids, stop strings and a token budget (HF generate / vLLM semantics).
//
// - The n samples of one prompt share ONE prompt prefill: the KV cache of the
//   P prompts is expanded to P*n rows (KVCache::expand_batch), not recomputed.
// - Different prompts batch with left padding.
// - Finished rows are dropped from the batch (KVCache::select_batch) once
//   enough of them have finished, so they stop costing compute.
// - Draws come from the portable core Rng, one stream per (prompt, sample),
//   never from at::multinomial's global generator: results reproduce across
//   libtorch versions and devices, and a row's draws do not depend on which
//   other rows share its batch.
// - temperature 0 = greedy (argmax, first index on ties): equals
//   greedy_generate token for token.
// - Stop strings (vLLM / TRL semantics): after each token the decoded text of
//   the new tokens is searched; on a hit the text is cut BEFORE the stop string
//   and finish_reason = "stop". `ids` keep every sampled token (including the
//   one that completed the stop string), so text is a prefix of decode(ids).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt {

class CausalLM;
class Tokenizer;

// Given the decoded text of a row's new tokens, return the byte position at
// which the sample ends (text is cut there) or std::string::npos to continue.
using StopFn = std::function<size_t(const std::string& text)>;

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  int top_k = 0;             // 0 = off
  double top_p = 1.0;        // 1 = off
  uint64_t seed = 0;
  int max_new_tokens = 256;
  std::vector<int64_t> eos_ids;
  std::vector<std::string> stop_strings;  // needs a tokenizer
  StopFn stop_fn;                         // optional extra stop rule (needs a tokenizer); finish_reason "stop"
  int n = 1;
  // Optional Rng stream id per prompt (default: the prompt's index). Lets a
  // caller that re-batches prompts (the tool loop) keep each row's stream.
  std::vector<uint64_t> stream_ids;
  // false: each of the P*n rows runs its own prompt prefill (the naive path;
  // kept as the test oracle and the benchmark baseline).
  bool share_prefill = true;
  // Pick tokens with tensor ops on the model's device (pick_tokens below): only
  // the chosen ids and their log-probs come to the host per step, never the
  // [rows, V] logits. Always on for a non-CPU model; on CPU (where the host
  // path copies nothing) only when asked, to test it against the host path.
  bool on_device = false;
};

// The stop ids of a model directory: config.json's eos_token_id(s), those of
// generation_config.json (when present) and the tokenizer's EOS (tok may be null);
// sorted, without duplicates.
std::vector<int64_t> model_eos_ids(const std::string& model_dir, const CausalLM& m, const Tokenizer* tok);

struct Sample {
  std::vector<int64_t> ids;         // new tokens only (the EOS included when hit)
  std::string text;                 // decode(ids, skip special), cut before a stop string ("" without tokenizer)
  std::string finish_reason;        // "eos" | "stop" | "length"
  double logprob_sum = 0;           // sum of log p_model(token) under the raw model (no temperature/filters)
};

// The distribution HF's warpers give (order: temperature, top-k, top-p;
// TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper). temperature
// must be > 0. Returns probabilities over the vocabulary (zeros where filtered).
std::vector<double> filtered_distribution(const std::vector<float>& logits, double temperature, int top_k,
                                          double top_p);

// Inverse-CDF draw from p with u in [0,1) (zero-probability entries never drawn).
int64_t draw_index(const std::vector<double>& p, double u);

// filtered_distribution + draw_index + the raw log-prob for every row of
// logits [A,V] at once in tensor ops on the logits' device (fp64), with one
// uniform u[a] per row (temperature > 0; greedy: the argmax). Returns the ids
// [A] and their log p_model [A] on the host. Equal to the host path up to the
// order of the cumulative sums.
std::pair<std::vector<int64_t>, std::vector<double>> pick_tokens(const at::Tensor& logits, double temperature, int top_k,
                                                                 double top_p, const std::vector<double>& u);

// The Rng seed of (prompt stream id, sample index) under `seed`.
uint64_t sample_stream_seed(uint64_t seed, uint64_t stream_id, uint64_t sample_index);

// result[prompt][sample]. `tok` may be null for id-only sampling (then text is
// empty and stop strings are not allowed).
std::vector<std::vector<Sample>> sample(const CausalLM& model, const Tokenizer* tok,
                                        const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& p);
inline std::vector<std::vector<Sample>> sample(const CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                               const SamplingParams& p) {
  return sample(model, nullptr, prompts, p);
}

}  // namespace prefopt
