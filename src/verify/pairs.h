// prefopt verify: preference pairs from graded samples, in TRL's formats.
//
//  - random correct vs random incorrect per prompt: the recipe of "Building
//    Math Agents with Multi-Turn Iterative Preference Learning" (Xiong et al.,
//    arXiv 2409.02392): for each prompt, a correct trajectory picked at random
//    is chosen and an incorrect one picked at random is rejected; prompts with
//    no correct or no incorrect sample give no pair.
//  - best vs worst by a score (e.g. a reward model or a pass rate): the highest
//    score is chosen, the lowest rejected, when they differ by more than a margin.
//  - DSTC (verify/dstc.h): code x test execution matrices.
// Output rows are TRL's preference format {prompt, chosen, rejected} and its
// unpaired (KTO) format {prompt, completion, label}; prompt and completions
// keep the type they came in (text, or a list of chat messages).
// Deterministic: the random recipe draws from core/rng.h with a per-prompt
// stream derived from (seed, prompt index).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace prefopt {

struct GradedSample {
  nlohmann::json completion;  // text or chat messages
  bool correct = false;
  double score = 0;           // best-vs-worst key (defaults to correct ? 1 : 0)
};

struct PromptSamples {
  std::string id;             // prompt id (for reports)
  nlohmann::json prompt;      // text or chat messages
  std::vector<GradedSample> samples;
};

struct PreferencePair {
  std::string id;
  nlohmann::json prompt, chosen, rejected;
};

struct UnpairedRow {
  std::string id;
  nlohmann::json prompt, completion;
  bool label = false;
};

// At most `max_pairs` pairs per prompt, each sample used once.
std::vector<PreferencePair> random_correct_incorrect_pairs(const std::vector<PromptSamples>& prompts, uint64_t seed,
                                                           int max_pairs = 1);
// Several pairs per prompt from every (correct, incorrect) combination of its
// distinct completions (duplicates dropped first), in a seeded random order,
// at most `max_pairs` per prompt (0 = all): iterative RPO's recipe (Pang et
// al., arXiv 2404.19733) of many pairs per problem.
std::vector<PreferencePair> correct_incorrect_combinations(const std::vector<PromptSamples>& prompts, uint64_t seed,
                                                           int max_pairs);
// The distinct correct completions of each prompt (at most `max_per_prompt`,
// 0 = all), in a seeded random order: rejection-sampling fine-tuning data
// (RFT, Yuan et al. arXiv 2308.01825; STaR / expert iteration).
std::vector<UnpairedRow> distinct_correct_rows(const std::vector<PromptSamples>& prompts, uint64_t seed,
                                               int max_per_prompt);
// Best vs worst by score; none when best - worst <= min_margin. Ties: the
// earliest sample wins both roles' tie-break.
std::vector<PreferencePair> best_worst_pairs(const std::vector<PromptSamples>& prompts, double min_margin = 0);
// Every sample as a KTO row labelled by correctness.
std::vector<UnpairedRow> unpaired_rows(const std::vector<PromptSamples>& prompts);

// TRL rows: {"prompt", "chosen", "rejected"} / {"prompt", "completion", "label"}
// (+ "prompt_id" when the id is not empty).
nlohmann::json to_json(const PreferencePair& p);
nlohmann::json to_json(const UnpairedRow& r);

}  // namespace prefopt
