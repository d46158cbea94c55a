// prefopt model: Hugging Face config.json -> one typed config for the
// supported decoder families. No torch here.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace prefopt {

enum class Family { Llama, Mistral, Qwen2, Gemma, Gemma2, GPT2 };
const char* to_string(Family f);

enum class Activation { SiLU, GeluTanh, Gelu, Relu };

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Family family = Family::Llama;
  std::string model_type = "llama";
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0;
  int64_t num_hidden_layers = 0, num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;  // layer_norm_epsilon for GPT-2
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v (and o for Llama's attention_bias) biases
  bool mlp_bias = false;
  Activation act = Activation::SiLU;
  double attn_logit_softcapping = 0.0, final_logit_softcapping = 0.0;  // Gemma2 (0 = off)
  double query_pre_attn_scalar = 0.0;                                  // Gemma2 (0 = head_dim)
  int64_t sliding_window = 0;                                          // 0 = none
  double initializer_range = 0.02;
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1, pad_token_id = -1;
  nlohmann::json raw;  // the config.json as read (written back on save, updated)

  double attn_scale() const;
  bool layer_is_sliding(int64_t layer) const;
};

// Every value is checked once, here: types (an integer where HF writes one,
// never a float or a string), ranges (sizes positive, eps / rope_theta
// positive and finite), consistency (hidden_size divisible by the heads when
// head_dim is absent, num_key_value_heads dividing num_attention_heads, an even
// head_dim for RoPE), model_type and architectures. A bad value throws
// prefopt::Error naming the file and the key, what was expected and found.
// Reads and validates DIR/config.json (or a config.json path). Errors name the
// file and the key.
ModelConfig load_config(const std::string& path);
ModelConfig parse_config(const nlohmann::json& j, const std::string& where);
// The tensors a checkpoint of this config holds: HF state_dict names and
// shapes, in load order (lm_head.weight only when the embeddings are untied).
using TensorLayout = std::vector<std::pair<std::string, std::vector<int64_t>>>;
TensorLayout expected_tensors(const ModelConfig& c);

// A tensor as a checkpoint header describes it (no data).
struct CheckpointTensor {
  std::string name, file, dtype;  // dtype: the safetensors spelling, e.g. "F32"
  std::vector<int64_t> shape;
  bool floating = true;
};
// Checks a checkpoint's tensor list against the config: every expected tensor
// present with the expected shape and a floating dtype, nothing unexpected
// (tied lm_head, rotary inv_freq and GPT-2 attention-mask buffers excepted).
// Errors name the safetensors file, the tensor, expected vs found shape, and
// the config file whose sizes imply the expectation.
void check_checkpoint(const ModelConfig& c, const std::vector<CheckpointTensor>& found,
                      const std::string& config_file);
// JSON to write as config.json (HF field names for the family).
nlohmann::json config_to_json(const ModelConfig& c);
// A Llama config built in code (the demo's tiny model).
ModelConfig llama_config(int64_t vocab, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                         int64_t intermediate, int64_t max_positions, bool tie = false);

}  // namespace prefopt
