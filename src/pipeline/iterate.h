// prefopt pipeline: `prefopt iterate`, the demo's loop for a user's HF model
// and GSM8K / MATH-style JSONL prompts, as a library call.
//
// TOML keys (top level; [train] holds `prefopt train` keys with TRL's names
// for the rounds):
//   model, prompts, held_out, output_dir, grader (gsm8k | math),
//   method (dpo | kto | bco | tpo | orpo | simpo | cpo | rft), rounds,
//   n_samples, eval_n, max_new_tokens, temperature, top_p, seed,
//   prompt_field, answer_field, prompt_template ("{prompt}" is replaced),
//   prompts_per_round (0 = every prompt each round; else a fresh slice of the
//   pool per round), max_pairs_per_prompt (1 = one random pair; K = up to K
//   correct x incorrect combinations; 0 = all),
//   controls (a list: "rft", "sft_more"; run from the same base model with the
//   same training tokens per round), sft_data + solution_field (worked
//   solutions, for sft_more), device (auto | cpu | cuda | cuda:N),
//   peft_reference ("base" | "previous_round", with [train] use_peft: see below).
// LoRA: [train] use_peft = true (and lora_r, lora_alpha, lora_dropout,
// lora_target_modules, as in `prefopt train`) trains a LoRA adapter each
// round instead of every weight; round<k>/ holds the adapter in PEFT's format.
// peft_reference = "base" (default): one adapter trained on through the
// rounds, the reference is always the base model (the adapters switched off).
// "previous_round": after each round the adapter is merged into the weights
// (round<k>/ also holds the merged model) and the next round trains a fresh
// adapter, so the reference is the previous round's merged model.
// The prompts need only a final answer: worked solutions are never read
// except by sft_more and Triple-PO.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/loop.h"

namespace prefopt::pipeline {

struct IterateConfig {
  std::string model, prompts, held_out, sft_data;
  std::string prompt_field = "question", answer_field = "answer", solution_field = "answer";
  std::string prompt_template = "{prompt}";
  std::vector<std::string> controls;
  std::string device = "auto";
  std::string peft_reference = "base";  // base | previous_round (use_peft only)
  LoopOptions loop;  // out_dir, grader, method, rounds, sampling, pairs, [train]

  // Reads and validates a TOML file; unknown keys are errors naming file:line.
  static IterateConfig from_toml(const std::string& path);
};

// GSM8K-style JSONL problems: the prompt is prompt_template with "{prompt}"
// replaced by the prompt field; the answer field is graded; the solution
// field (when not empty) is kept as the worked solution.
std::vector<LoopProblem> read_problems(const std::string& path, const std::string& prompt_field,
                                       const std::string& answer_field, const std::string& prompt_template,
                                       const std::string& solution_field = "");

// Runs (or, with resume, continues an interrupted run: pipeline/run_state.h)
// and returns summary.json's content, which is rewritten after every round.
nlohmann::json run_iterate(const IterateConfig& c, bool resume);

}  // namespace prefopt::pipeline
