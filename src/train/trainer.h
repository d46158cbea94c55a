// prefopt train: the training loop for every objective (one loop; the
// per-family loss steps are in steps.h, AdamW in adamw.h, checkpoints in
// checkpoint.h, scoring and the reference cache in scoring.h). A step is one AdamW update over
// gradient_accumulation_steps micro-batches of per_device_train_batch_size
// examples. The data order is a Fisher-Yates shuffle per epoch over prefopt's
// portable Rng seeded by (seed, epoch), so the whole training state is
// (weights, AdamW moments, step, BCO running mean, reference weights under
// TR-DPO): exactly what a checkpoint holds, hence --resume reproduces the
// uninterrupted loss trajectory. Under BCO UDM the checkpoint also holds the
// density-ratio classifier and its per-row weights, restored on resume. A
// resume whose config differs from the checkpoint's in keys that change
// training warns with each "key: old -> new".
//
// Data parallel (torchrun, see dist/dist.h and train/dist_sync.h): an
// optimizer step's global batch is gradient_accumulation_steps x world_size
// micro-batches, the same rows for every world size; gradients are summed
// over the ranks before the norm and clipping, metrics are averaged over the
// global batch, and when a step has more than one micro-batch KTO's KL point
// and BCO's δ are computed over the whole global batch by a no-grad pass
// first (so 2 ranks x accumulation 1 equal 1 rank x accumulation 2). Rank 0
// alone writes metrics.jsonl, checkpoints and the final model.
//
// Output: output_dir/metrics.jsonl (TRL's metric names, one line per
// logging_steps), output_dir/checkpoint-<step>/ (atomic: model, config,
// tokenizer files, optimizer.safetensors, trainer_state.json), and the final
// model in HF format in output_dir itself (model.safetensors, config.json,
// tokenizer files), as TRL's trainer.save_model(output_dir). Under use_peft
// the model files are the adapter's (adapter_config.json,
// adapter_model.safetensors) in checkpoints and in output_dir.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "data/dataset.h"
#include "loss/objectives.h"
#include "train/batch.h"
#include "train/checkpoint.h"  // latest_checkpoint
#include "train/config.h"
#include "model/lora.h"         // LoraConfig
#include "train/steps.h"       // MicroStep

namespace prefopt {

class CausalLM;

struct TrainSummary {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0, seconds = 0, tokens_per_second = 0;
  double comm_seconds = 0;  // time in collectives (data parallel runs)
  double grad_sync_seconds = 0;  // of which: the gradients' all-reduce after backward (not hidden by overlap)
  std::vector<std::map<std::string, double>> logged;  // the rows written to metrics.jsonl
};

// The LoRA settings of a config (lora_r, lora_alpha, lora_dropout,
// lora_target_modules) for a base model at `base_model`.
LoraConfig peft_config(const TrainConfig& c, const std::string& base_model);

class Trainer {
 public:
  // `ref` may be null: a frozen copy of the policy is made when the method
  // needs one (dpo unless reference_free, kto, bco). Under use_peft only the
  // LoRA adapters train (fresh ones are attached unless the policy has some),
  // the reference is the policy with its adapters off (`ref` must be null),
  // and checkpoints and the final output hold the adapter in PEFT's format. `source_dir` is where
  // tokenizer files are copied from into checkpoints and the final model ("" = none).
  Trainer(TrainConfig cfg, CausalLM& policy, std::unique_ptr<CausalLM> ref, Dataset train,
          std::optional<Dataset> eval = std::nullopt, std::string source_dir = "");
  ~Trainer();

  // Runs to max_steps. resume_from: a checkpoint directory, or "" to start fresh.
  TrainSummary train(const std::string& resume_from = "");

  // Loss and metrics of rows [idx] of a dataset (the training set, or the eval set when eval = true).
  // stats: the optimizer step's KL point / δ (see StepStats), or null for the micro-batch's own.
  MicroStep compute(const std::vector<size_t>& idx, bool eval, bool need_grad, const StepStats* stats = nullptr);
  std::map<std::string, double> evaluate();

  int64_t total_steps() const { return total_steps_; }
  double lr_at(int64_t step) const;  // learning rate of optimizer step `step` (0-based)
  const TrainConfig& config() const { return cfg_; }

 private:
  struct Impl;
  struct StepOut;
  int64_t restore(const std::string& dir, const std::string& metrics_path);  // the checkpoint's step
  void save(int64_t step);
  std::vector<size_t> rows_for_micro(int64_t micro);
  ScoredBatch score_rows(const std::vector<size_t>& idx, bool eval, bool need_grad, int64_t* tokens);
  StepStats step_stats(int64_t step);  // KTO's KL point / BCO's δ over the global batch of `step`
  StepOut run_step(int64_t step);  // one optimizer step over the accumulated micro-batches
  TrainConfig cfg_;
  CausalLM& policy_;
  std::unique_ptr<Impl> impl_;
  int64_t total_steps_ = 0;
};

}  // namespace prefopt
