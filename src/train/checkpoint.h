// prefopt train: checkpoints. output_dir/checkpoint-<step>/ holds the model in
// HF format (model.safetensors, config.json, tokenizer files),
// optimizer.safetensors (exp_avg.<param>, exp_avg_sq.<param>; ref.<param>
// under TR-DPO; udm.w and udm.row_weight under BCO UDM) and
// trainer_state.json (step, data hash, BCO running moments, the resolved
// config). A checkpoint directory is written atomically.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace prefopt {

class CausalLM;

// model.safetensors (fp32) and config.json of `m` into dir; for a model with
// LoRA adapters, adapter_config.json and adapter_model.safetensors instead.
// `dtype`: of model.safetensors (and config.json's torch_dtype); adapters stay fp32.
void write_model_files(const CausalLM& m, const std::string& dir, at::ScalarType dtype = at::kFloat);

struct Checkpoint {
  std::string dir;
  nlohmann::json state;                          // trainer_state.json
  std::map<std::string, at::Tensor> model;       // model.safetensors, or adapter_model.safetensors (fp32, CPU)
  std::map<std::string, at::Tensor> optimizer;   // optimizer.safetensors (fp32, CPU)
};

// Writes output_dir/checkpoint-<step> atomically and returns its path.
std::string save_checkpoint(const std::string& output_dir, int64_t step, const CausalLM& policy,
                            const std::string& tokenizer_source, const std::map<std::string, at::Tensor>& optimizer,
                            const nlohmann::json& state);

// Reads a checkpoint directory; an unreadable trainer_state.json is an Error
// naming it.
Checkpoint load_checkpoint(const std::string& dir);

// Keeps the newest `keep` checkpoint-<step> directories of output_dir (by
// step), removing the others; keep <= 0 keeps all.
void rotate_checkpoints(const std::string& output_dir, int64_t keep);

// output_dir's newest checkpoint-<step> directory, or "" when there is none.
std::string latest_checkpoint(const std::string& output_dir);

// The keys of two resolved configs (TrainConfig::to_json) whose values differ,
// as "key: old -> new" in key order. Keys that do not change what is trained
// (output_dir, logging_steps, save_steps, save_total_limit, eval_steps,
// eval_data, threads) are left out.
std::vector<std::string> config_changes(const nlohmann::json& saved, const nlohmann::json& now);

}  // namespace prefopt
