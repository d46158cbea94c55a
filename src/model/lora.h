// prefopt model: LoRA adapters (Hu et al. 2021) in PEFT's layout. An adapter
// on a linear layer W (out x in) adds scale * B (A (dropout(x))) to W x, with
// A [r, in], B [out, r] and scale = lora_alpha / r. A starts as PEFT's
// "default" init (kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))),
// B at zero, so a fresh adapter leaves the model's output unchanged. Dropout
// acts on the adapter's input in training mode only.
//
// The adapters hang off a CausalLM (CausalLM::attach_lora); switching them
// off (CausalLM::set_adapters_enabled(false), or AdaptersOff) gives the base
// model's forward with the same weights, which the trainer uses as the
// reference. Files: adapter_config.json and adapter_model.safetensors with
// PEFT's keys, base_model.model.<HF module path>.lora_{A,B}.weight.
// Llama-family decoders only (q/k/v/o_proj, gate/up/down_proj); GPT-2's fused
// Conv1D layers are not supported.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt {

class CausalLM;

// The seven linear modules of a decoder layer, in PEFT's names.
enum class LoraModule { Q = 0, K, V, O, Gate, Up, Down };
constexpr int kLoraModules = 7;
const char* lora_module_name(LoraModule m);  // "q_proj", ...

struct LoraConfig {
  int64_t r = 16;
  double lora_alpha = 32;
  double lora_dropout = 0.05;
  std::vector<std::string> target_modules;  // module names (resolved: never "all-linear")
  std::string base_model_name_or_path;
  double scale() const { return lora_alpha / static_cast<double>(r); }
};

// "all-linear" (every linear layer but lm_head) or a comma-separated list of
// module names -> names in the order of LoraModule. Bad names are an Error
// naming `origin`.
std::vector<std::string> parse_lora_targets(const std::string& spec, const std::string& origin);

struct LoraAdapters {
  LoraConfig cfg;
  // Per layer and module: A [r,in], B [out,r] (fp32); undefined when the module is not targeted.
  std::vector<std::array<at::Tensor, kLoraModules>> A, B;
  bool enabled = true;    // false: the base model's forward
  bool training = false;  // dropout on
  // PEFT's key of one adapter tensor ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").
  static std::string key(int64_t layer, LoraModule m, bool is_b);
  // (PEFT key, tensor) handles of every adapter tensor, layer-major, A before B.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  int64_t num_parameters() const;
};

// y = x W^T + b + scale * dropout(x) A^T B^T, the adapter term computed in
// A's dtype and added in x's. Dropout (probability p) only when training.
at::Tensor lora_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& A,
                       const at::Tensor& B, double scale, double p, bool training);

// Fresh adapters on `m` (PEFT's init; A drawn from prefopt's portable Rng
// seeded by `seed`). Replaces any adapters already attached.
void attach_lora(CausalLM& m, const LoraConfig& cfg, uint64_t seed);
// Reads adapter_config.json + adapter_model.safetensors from `dir` and
// attaches them; errors name the file, the key and what was expected.
void load_lora(CausalLM& m, const std::string& dir);
// Writes adapter_config.json + adapter_model.safetensors (fp32) of m's
// adapters into `dir` (each file atomically).
void save_lora(const CausalLM& m, const std::string& dir);
// W += scale * B A on every adapted layer, then detaches the adapters.
void merge_lora(CausalLM& m);

// Scope guard: the adapters of `m` off (the reference forward), restored after.
class AdaptersOff {
 public:
  explicit AdaptersOff(const CausalLM& m);
  ~AdaptersOff();
  AdaptersOff(const AdaptersOff&) = delete;
  AdaptersOff& operator=(const AdaptersOff&) = delete;

 private:
  LoraAdapters* a_;
  bool was_;
};

}  // namespace prefopt
