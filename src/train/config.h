// prefopt train: the training configuration. Keys carry the names of TRL's
// DPOConfig / KTOConfig / BCOConfig / CPOConfig / ORPOConfig and HF
// TrainingArguments where the concept is the same; prefopt's own keys are
// marked in the table (config.cpp) and in docs/training.md. A TOML file sets
// any of them (top-level keys, unknown keys are an error naming the file and
// key); every key is also a flag spelled as in TRL (--learning_rate 1e-3),
// and flags override the file.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace prefopt {

enum class DataKind;

// The objective, parsed from TrainConfig::method.
enum class Method { Dpo, Kto, Bco, Tpo, Orpo, Cpo, Simpo, Sft };
Method parse_method(const std::string& s);  // Error listing the options when unknown
const char* to_string(Method m);
DataKind data_kind(Method m);  // the rows the objective trains on (paired, triple, unpaired, sft)

struct TrainConfig {
  std::string method = "dpo";  // dpo | kto | bco | tpo | orpo | cpo | simpo | sft (prefopt); the user's spelling
  // HF TrainingArguments
  std::string output_dir = "trainer_output";
  double learning_rate = 1e-6;
  int64_t per_device_train_batch_size = 8;
  int64_t per_device_eval_batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  int64_t max_steps = -1;
  double num_train_epochs = 3.0;
  std::string lr_scheduler_type = "linear";  // constant | constant_with_warmup | linear | cosine
  double warmup_ratio = 0.0;
  int64_t warmup_steps = 0;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;
  int64_t logging_steps = 10;
  int64_t save_steps = 500;
  int64_t save_total_limit = 0;  // 0 = keep every checkpoint
  int64_t eval_steps = 0;        // 0 = evaluate at the end only (when there is eval data)
  int64_t seed = 42;
  // TRL data
  int64_t max_length = 1024;
  int64_t max_prompt_length = 512;
  int64_t max_completion_length = 0;
  std::string truncation_mode = "keep_end";
  // DPO
  double beta = 0.1;
  std::string loss_type = "";  // default per method: sigmoid (dpo, cpo, tpo), kto (kto), simpo (simpo)
  double label_smoothing = 0.0;
  double rpo_alpha = 0.0;  // TRL None
  bool reference_free = false;
  bool precompute_ref_log_probs = false;
  bool sync_ref_model = false;  // TR-DPO
  double ref_model_mixup_alpha = 0.6;
  int64_t ref_model_sync_steps = 512;
  std::string f_divergence_type = "reverse_kl";
  double f_alpha_divergence_coef = 1.0;
  double discopop_tau = 0.05;
  // KTO / BCO
  double desirable_weight = 1.0, undesirable_weight = 1.0;
  double min_density_ratio = 0.5, max_density_ratio = 10.0;
  bool bco_udm = false;  // prefopt: BCO underlying-distribution matching on prompt embeddings
  // CPO / SimPO / Triple-PO
  double cpo_alpha = -1.0;  // -1: TRL's 1.0 for cpo, 0.0 for simpo
  double simpo_gamma = 0.5;
  double tpo_alpha = 1.0;
  // PEFT LoRA (TRL ModelConfig names)
  bool use_peft = false;      // train LoRA adapters only; the reference is the model with the adapters off
  int64_t lora_r = 16;
  double lora_alpha = 32;
  double lora_dropout = 0.05;
  std::string lora_target_modules = "q_proj,v_proj";  // PEFT's default for Llama-family models; or "all-linear"
  // Memory and precision (HF TrainingArguments / TRL ModelConfig names; `attention` is prefopt's)
  bool gradient_checkpointing = false;  // recompute each decoder layer in backward
  std::string attention = "auto";       // auto (= eager) | eager | chunked (model/attention.h)
  bool bf16 = false;                    // bf16 matmuls under autocast; fp32 master weights, moments and losses
  std::string torch_dtype = "auto";     // dtype of the saved final model: auto (float32) | float32 | bfloat16 | float16
  // prefopt
  bool prefix_sharing = true;
  bool mask_tool_observations = true;
  std::string chat_template = "";
  std::string eval_data = "";
  double eval_split = 0.0;
  int64_t logps_chunk_rows = 0;  // 0 = auto: a [rows, vocab] fp32 block of about 64 MB
  bool logps_full_vocab = false;  // benchmark baseline: full [rows, vocab] log-softmax, as TRL (bench_train)
  int64_t threads = 0;  // ATen intra-op threads; 0 = prefopt's recommendation
  int64_t ddp_timeout = 1800;  // seconds a collective may wait for a peer rank (torchrun runs)
  double ddp_bucket_cap_mb = 25;  // gradient all-reduce buckets of at most this many MiB (as DDP)
  bool ddp_overlap = true;        // start each bucket's all-reduce during the last backward pass

  std::string resolved_loss_type() const;
  double resolved_cpo_alpha() const;
  bool needs_reference() const;  // dpo (unless reference_free), kto, bco
  // Ranges and enum values (errors name the key); parses `method` for method_kind().
  void validate() const;
  // The parsed `method`: cached by validate(), parsed again if `method` was
  // changed since (an unknown method is an Error).
  Method method_kind() const;
  nlohmann::json to_json() const;

 private:
  mutable std::string parsed_method_;
  mutable Method method_kind_ = Method::Dpo;
};

// One entry per key (name, kind, help, pointer into a config).
struct ConfigKey {
  std::string name;
  char kind;  // 'i' int64, 'd' double, 'b' bool, 's' string
  std::string help;
  bool prefopt_only;
  void* ptr;
};
std::vector<ConfigKey> config_keys(TrainConfig& c);

// Sets one key from text (flag values); errors name the key and the expected type.
void set_config_value(TrainConfig& c, const std::string& key, const std::string& value, const std::string& origin);
// Loads a TOML file into c (only the keys it holds). With `section`, the keys
// of that table ([train]) instead of the top level; a missing table is fine.
void load_config_toml(TrainConfig& c, const std::string& path, const std::string& section = "");

}  // namespace prefopt
