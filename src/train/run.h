// prefopt train, the run: what `prefopt train` and the Python module's
// `prefopt.train` share once the configuration is known. Loads the policy
// (with a LoRA adapter to continue, or a fresh one under use_peft), the
// reference, the tokenizer and chat template (from the model directory
// unless given), the training and evaluation sets, resolves --resume, and
// runs the Trainer.
#pragma once
#include <string>

#include <ATen/core/Tensor.h>

#include "train/config.h"
#include "train/trainer.h"

namespace prefopt {

struct TrainPaths {
  std::string model, data, ref_model, adapter, tokenizer;
  bool resume = false;      // continue from a checkpoint
  std::string resume_from;  // empty: the newest checkpoint-<step> in output_dir
};

// How the caller spells its inputs in errors ("--ref-model" or "train(ref_model)").
struct TrainNames {
  std::string ref_model = "--ref-model", use_peft = "--use_peft", resume = "--resume";
};

// True when `dir` holds tokenizer files (tokenizer.json, tokenizer.model, or vocab.json + merges.txt).
bool has_tokenizer_files(const std::string& dir);

TrainSummary run_training(TrainConfig cfg, const TrainPaths& p, const at::Device& dev,
                          const TrainNames& names = TrainNames{});

}  // namespace prefopt
