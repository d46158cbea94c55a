// prefopt pipeline: the verifiable preference-learning loop:
// sample n per prompt -> grade -> build pairs (or unpaired / triple rows) ->
// train -> evaluate pass@k on held-out prompts -> repeat. Used by
// `prefopt demo` (built-in task, tiny model) and `prefopt iterate` (a user's
// model and prompts).
//
// Output layout of DIR (read by pipeline/report.h):
//   DIR/summary.json                 {"seed", "method", "rounds": [{"name", "pass_at_k", "greedy_accuracy",
//                                      "pairs", "train_steps", "seconds", ...}]}
//   DIR/<round>/                     the round's model in HF format (+ tokenizer files)
//   DIR/<round>/metrics.jsonl        training metrics, TRL names
//   DIR/<round>/passk.json           {"n", "pass_at_k": {"1": ...}, "per_problem": {...}}
//   DIR/<round>/pairs.jsonl          the training rows of the round (TRL format, text + ids)
//   DIR/report.md + *.svg
//   DIR/run_state.json               the committed steps of a resumable run (pipeline/run_state.h)
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "train/config.h"

namespace prefopt {
class CausalLM;
class Tokenizer;
}  // namespace prefopt

namespace prefopt::pipeline {

class RunState;

struct LoopProblem {
  std::string id;
  std::string prompt;         // the text the model continues
  std::string answer;         // the gold final answer (graded)
  std::string gold_solution;  // a worked solution (Triple-PO's gold; SFT)
  // With tools: the gold as (text, is_tool_observation) segments, tokenized one by one.
  std::vector<std::pair<std::string, bool>> gold_segments;
};

struct LoopOptions {
  std::string out_dir;
  uint64_t seed = 0;
  std::string method = "dpo";  // dpo | kto | bco | tpo | orpo | simpo | cpo
  int rounds = 2;
  std::string grader = "gsm8k";  // gsm8k | math
  // sampling for pairs and for pass@k (the same temperature: pairs and evaluation see the same policy)
  int n_samples = 8, eval_n = 8, max_new_tokens = 48;
  double temperature = 1.0, top_p = 1.0;
  int64_t eos_id = -1;
  // Multi-turn (--tools python): samples run the tool-call loop
  // (generate/tool_loop.h, code in the sandbox); observation tokens are
  // masked out of training when train.mask_tool_observations (M-DPO / M-KTO).
  bool tools = false;
  int max_tool_calls = 2;
  // Prompts of a round: 0 = every training prompt each round; otherwise a fresh
  // slice of this many per round, cycling through the pool.
  int prompts_per_round = 0;
  // Pairs (or RFT rows) per prompt: 1 = one random correct vs one random incorrect
  // sample, each used once; K > 1 = up to K (correct, incorrect) combinations of
  // distinct samples (0 = all of them).
  int max_pairs_per_prompt = 1;
  // Score the rejected completion only up to and including its first token that
  // differs from the chosen one (a step-level preference, as Step-DPO, Lai et al.
  // arXiv 2406.18629): the tokens after a mistake say nothing about which answer
  // is preferred, and pushing them down also pushes down the correct steps they
  // repeat. The shared prefix cancels in the DPO margin either way.
  bool truncate_rejected = false;
  // When set (a control arm): round r trains max_steps chosen so that it sees
  // about round_train_tokens[r - 1] tokens (the compute of the arm it controls).
  std::vector<int64_t> round_train_tokens;
  // Under train.use_peft: merge each round's adapter into the weights after
  // training (the next round trains a fresh adapter against that merged
  // model); false: one adapter through the rounds, reference = the base model.
  bool merge_adapter_each_round = false;
  TrainConfig train;  // preference rounds (output_dir is set per round); method "rft" trains sft on correct samples
  int first_round = 1;  // resume: rounds before this one are done
  std::string label;    // shown before the round names in the log (a control arm's name)
  std::function<void(const nlohmann::json& entry)> on_round;  // called after each round
  // Resumable runs (run_state.h): each round is the step "<step_prefix>round<k>"
  // (its pairs "<step_prefix>round<k>/pairs"); committed steps are skipped.
  RunState* state = nullptr;
  std::string step_prefix;
  // Loads a committed round's policy from its directory (default: the HF model
  // files there; iterate under use_peft: the base model plus the round's adapter).
  std::function<std::unique_ptr<CausalLM>(const std::string& dir)> load_round;
};

struct EvalResult {
  std::map<int64_t, double> pass_at_k;
  double greedy_accuracy = 0;
  double pass1_stderr = 0;  // standard error of mean pass@1 over problems (sd of c/n per problem / sqrt(P))
  int64_t n = 0;
  nlohmann::json per_problem;
};

// Samples eval_n per problem (shared prefill) and a greedy answer; grades them.
EvalResult evaluate(const CausalLM& model, const Tokenizer& tok, const std::vector<LoopProblem>& problems,
                    const LoopOptions& o, uint64_t seed);

// A problem's gold solution as a training completion (+ EOS): its
// gold_segments (tool observations masked when mask_tools) or gold_solution.
Completion gold_completion(const Tokenizer& tok, const LoopProblem& p, int64_t eos, bool mask_tools);

// Zeroes the loss mask of `rejected` after its first token that differs from
// `chosen` (that token stays scored; a rejected that is a prefix of chosen keeps
// its mask).
void truncate_after_first_difference(Completion& rejected, const Completion& chosen);

// Writes DIR/<name>/passk.json and returns the summary.json entry of a round.
nlohmann::json round_entry(const std::string& name, const EvalResult& ev, int64_t pairs, int64_t steps,
                           double seconds, const std::string& dir);

// Tokens one epoch over `ds` trains on: each row's prompt once plus its completions (the packed form).
int64_t dataset_tokens(const Dataset& ds);

// SFT rows: each problem's prompt (masked) and gold_completion + EOS (scored).
Dataset sft_dataset(const Tokenizer& tok, const std::vector<LoopProblem>& problems, int64_t eos, bool mask_tools,
                    const std::string& path);

// The sft_more control: from `model`, one SFT run on `ds` per entry of
// o.round_train_tokens (about that many tokens each), evaluated after each;
// entries named round<k>, written to o.out_dir/round<k>, logged as "<o.label> round<k>".
std::vector<nlohmann::json> run_sft_rounds(std::unique_ptr<CausalLM>& model, const Tokenizer& tok,
                                           const std::string& tokenizer_dir, const Dataset& ds,
                                           const std::vector<LoopProblem>& held_out, const LoopOptions& o);

// Optimizer steps of `batch` rows from `ds` that train on about `tokens` tokens (at least 1).
int64_t steps_for_tokens(int64_t tokens, int64_t batch, const Dataset& ds);

// Trains `model` in place on `ds` (tc.output_dir is its directory), then
// evaluates it on the held-out problems: a round's summary entry with
// "train_tokens" (tokens per epoch x epochs trained).
nlohmann::json train_and_evaluate(std::unique_ptr<CausalLM>& model, const Tokenizer& tok,
                                  const std::string& tokenizer_dir, Dataset ds, const TrainConfig& tc,
                                  const std::string& name, const std::vector<LoopProblem>& held_out,
                                  const LoopOptions& o);

// The preference rounds after an initial (SFT) model: returns their summary entries.
// `model` is updated in place to the last round's policy.
std::vector<nlohmann::json> run_rounds(std::unique_ptr<CausalLM>& model, const Tokenizer& tok,
                                       const std::string& tokenizer_dir, const std::vector<LoopProblem>& train,
                                       const std::vector<LoopProblem>& held_out, const LoopOptions& o);

}  // namespace prefopt::pipeline
