// prefopt pipeline: the main job, `prefopt demo`, as a library call.
//
// The set-up of the verifiable-feedback papers, in miniature and offline:
// worked solutions are scarce, answers are cheap. Seeded arithmetic word
// problems (pipeline/task.h) are split into
//   - a small gold set: worked solutions ("23+15=38. 38-7=31. #### 31"),
//   - answer-only demonstrations: question -> "#### 31" with no working (the
//     cheap labels a practitioner also has; SFT imitates them as well),
//   - a large pool of answer-only prompts for the rounds (only the final answer
//     is known and checked by the grader; their worked solutions are never used),
//   - held-out problems for pass@k, the same for every arm.
// A byte-level BPE tokenizer and a tiny Llama are trained from scratch; SFT on
// the gold set + answer-only demonstrations gives the base model; then rounds
// of: a fresh slice of the pool -> n samples per prompt -> GSM8K grader ->
// up to K (correct, incorrect) pairs per prompt -> DPO + NLL on chosen (RPO),
// the previous round as reference -> pass@k on the held-out problems.
// With `controls`, the same SFT model also trains, with the same training
// tokens per round, by more SFT on the supervised data (sft_more) and by
// rejection-sampling fine-tuning on its own verified-correct samples (rft).
//
// Output (DIR = output_dir): DIR/sft, DIR/round<k> (HF model + tokenizer,
// metrics.jsonl, passk.json, pairs.jsonl), DIR/controls/<name>/round<k>,
// DIR/summary.json, DIR/report.md (+ SVG pictures), DIR/run_state.json
// (the committed steps: `--resume` continues a killed run, pipeline/run_state.h).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace prefopt::pipeline {

struct DemoOptions {
  std::string output_dir = "demo-out";
  std::string method = "dpo";  // dpo | kto | bco | tpo | orpo | simpo | cpo | rft
  uint64_t seed = 0;
  bool quick = false;     // a short smoke run (~1 minute)
  bool controls = false;  // also run sft_more and rft from the same SFT model
  // Sizes; a negative value means the default of the (quick or full) setting.
  int rounds = -1;
  int sft_steps = -1;
  int gold = -1;              // problems with a worked solution (SFT)
  int answer_only_sft = -1;   // answer-only demonstrations mixed into SFT
  int pool = -1;              // answer-only prompts for the rounds
  int prompts_per_round = -1;
  int held_out = -1;
  int n_samples = 16, eval_n = 8;  // samples per training prompt in a round / per held-out problem
  int max_pairs = -1;         // pairs per prompt (0 = every combination)
  int truncate_rejected = -1; // 1: score the rejected up to its first differing token (loop.h); -1: default
  double learning_rate = -1, beta = 0.1, rpo_alpha = 4.0, epochs = -1;  // rpo_alpha: NLL weight (dpo, simpo)
  std::string tools;          // "" or "python": the tool-call loop, M-DPO / M-KTO
  bool mask_tool_observations = true;
  std::string sft_from;       // reuse DIR/sft of an earlier run with the same set-up
  // Continue a run in output_dir that was interrupted (killed at any point):
  // its committed steps are kept, the rest is redone (pipeline/run_state.h).
  bool resume = false;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N (model/device.h)
};

// Runs the demo; returns summary.json's content (also written to DIR).
nlohmann::json run_demo(const DemoOptions& o);

// The printed summary of a finished demo: pass@1 per arm and round with
// standard errors, the paired gain over SFT, the run time.
std::string demo_printout(const nlohmann::json& summary);

// Paired difference of mean pass@1 between two evaluations of the same
// problems (passk.json's "per_problem" {"id": {"n", "c"}}): b - a and its
// standard error over problems.
std::pair<double, double> paired_gain(const nlohmann::json& per_problem_a, const nlohmann::json& per_problem_b);

}  // namespace prefopt::pipeline
