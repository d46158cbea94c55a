#include "model/lora.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace prefopt {

namespace {

constexpr const char* kNames[kLoraModules] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

std::string module_path(int64_t layer, LoraModule m) {
  const int i = static_cast<int>(m);
  const char* block = i <= static_cast<int>(LoraModule::O) ? "self_attn" : "mlp";
  return "model.layers." + std::to_string(layer) + "." + block + "." + kNames[i];
}

int module_index(const std::string& name) {
  for (int i = 0; i < kLoraModules; ++i)
    if (name == kNames[i]) return i;
  return -1;
}

// [out, in] of module m in a decoder of config c.
std::pair<int64_t, int64_t> module_shape(const ModelConfig& c, LoraModule m) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  switch (m) {
    case LoraModule::Q: return {Hq * D, H};
    case LoraModule::K:
    case LoraModule::V: return {Hkv * D, H};
    case LoraModule::O: return {H, Hq * D};
    case LoraModule::Gate:
    case LoraModule::Up: return {I, H};
    case LoraModule::Down: return {H, I};
  }
  return {0, 0};
}

void require_decoder(const CausalLM& m, const std::string& where) {
  PREFOPT_REQUIRE(m.config().family != Family::GPT2, where,
                  "LoRA adapters are supported on Llama, Mistral, Qwen2, Gemma and Gemma2 decoders, not GPT-2",
                  "train GPT-2 without --use_peft (full fine-tuning)");
}

std::shared_ptr<LoraAdapters> empty_adapters(const CausalLM& m, const LoraConfig& cfg) {
  auto a = std::make_shared<LoraAdapters>();
  a->cfg = cfg;
  a->A.assign(m.config().num_hidden_layers, {});
  a->B.assign(m.config().num_hidden_layers, {});
  return a;
}

}  // namespace

const char* lora_module_name(LoraModule m) { return kNames[static_cast<int>(m)]; }

std::vector<std::string> parse_lora_targets(const std::string& spec, const std::string& origin) {
  std::string s;
  for (char ch : spec)
    if (ch != ' ' && ch != '[' && ch != ']' && ch != '"' && ch != '\'') s += ch;
  if (s == "all-linear") return std::vector<std::string>(std::begin(kNames), std::end(kNames));
  std::set<int> chosen;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    const std::string name = s.substr(a, b - a);
    if (!name.empty()) {
      const int i = module_index(name);
      PREFOPT_REQUIRE(i >= 0, origin, "unknown LoRA target module \"" + name + "\"",
                      "use \"all-linear\" or a comma-separated list of q_proj, k_proj, v_proj, o_proj, gate_proj, "
                      "up_proj, down_proj (lm_head and embeddings cannot carry adapters)");
      chosen.insert(i);
    }
    a = b + 1;
  }
  PREFOPT_REQUIRE(!chosen.empty(), origin, "no LoRA target modules given",
                  "use \"all-linear\" or e.g. \"q_proj,v_proj\"");
  std::vector<std::string> out;
  for (int i : chosen) out.push_back(kNames[i]);
  return out;
}

std::string LoraAdapters::key(int64_t layer, LoraModule m, bool is_b) {
  return "base_model.model." + module_path(layer, m) + (is_b ? ".lora_B.weight" : ".lora_A.weight");
}

std::vector<std::pair<std::string, at::Tensor>> LoraAdapters::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t l = 0; l < A.size(); ++l)
    for (int i = 0; i < kLoraModules; ++i) {
      if (!A[l][i].defined()) continue;
      out.push_back({key(static_cast<int64_t>(l), static_cast<LoraModule>(i), false), A[l][i]});
      out.push_back({key(static_cast<int64_t>(l), static_cast<LoraModule>(i), true), B[l][i]});
    }
  return out;
}

int64_t LoraAdapters::num_parameters() const {
  int64_t n = 0;
  for (auto& [k, t] : named_parameters()) n += t.numel();
  return n;
}

at::Tensor lora_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& A,
                       const at::Tensor& B, double scale, double p, bool training) {
  at::Tensor y = at::linear(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt);
  if (!A.defined()) return y;
  at::Tensor xa = x.to(A.scalar_type());
  if (training && p > 0) xa = at::dropout(xa, p, true);
  at::Tensor d = at::linear(at::linear(xa, A), B) * scale;
  return y + d.to(y.scalar_type());
}

void attach_lora(CausalLM& m, const LoraConfig& cfg, uint64_t seed) {
  require_decoder(m, "--use_peft");
  PREFOPT_REQUIRE(cfg.r >= 1, "lora_r", fmt::format("must be >= 1, found {}", cfg.r), "the usual ranks are 8..64");
  PREFOPT_REQUIRE(cfg.lora_dropout >= 0 && cfg.lora_dropout < 1, "lora_dropout",
                  fmt::format("must be in [0, 1), found {}", cfg.lora_dropout), "PEFT's default is 0.05 (TRL's too)");
  PREFOPT_REQUIRE(std::isfinite(cfg.lora_alpha), "lora_alpha", "must be a finite number", "the usual value is 2 * r");
  auto a = empty_adapters(m, cfg);
  Rng rng(seed);
  const auto dev = m.device();
  for (int64_t l = 0; l < m.config().num_hidden_layers; ++l)
    for (const auto& name : cfg.target_modules) {
      const int i = module_index(name);
      PREFOPT_ASSERT(i >= 0, "unresolved LoRA target \"{}\"", name);
      auto [out, in] = module_shape(m.config(), static_cast<LoraModule>(i));
      // kaiming_uniform_(a=sqrt(5)) on [r, in]: gain sqrt(2/(1+5)), bound gain*sqrt(3/in) = 1/sqrt(in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      at::Tensor A = at::empty({cfg.r, in}, at::kFloat);
      float* p = A.data_ptr<float>();
      for (int64_t k = 0; k < A.numel(); ++k) p[k] = static_cast<float>((2 * rng.uniform() - 1) * bound);
      a->A[l][i] = A.to(dev);
      a->B[l][i] = at::zeros({out, cfg.r}, at::TensorOptions().dtype(at::kFloat).device(dev));
    }
  m.set_lora(a);
}

void load_lora(CausalLM& m, const std::string& dir) {
  require_decoder(m, dir);
  const std::string cpath = dir + "/adapter_config.json";
  PREFOPT_REQUIRE(file_exists(cpath), cpath, "missing", "--adapter takes a directory written by PEFT or prefopt train --use_peft");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cpath));
  } catch (const nlohmann::json::exception& e) {
    fail(cpath, std::string("not valid JSON: ") + e.what(), "the file is damaged; save the adapter again");
  }
  PREFOPT_REQUIRE(j.is_object(), cpath, "expected a JSON object", "the file is damaged; save the adapter again");
  auto key = [&](const char* k) { return cpath + ": key \"" + k + "\""; };
  PREFOPT_REQUIRE(j.value("peft_type", std::string("LORA")) == "LORA", key("peft_type"),
                  "expected \"LORA\", found " + j["peft_type"].dump(), "only LoRA adapters are supported");
  LoraConfig cfg;
  PREFOPT_REQUIRE(j.contains("r") && j["r"].is_number_integer() && j["r"].get<int64_t>() >= 1, key("r"),
                  "expected an integer >= 1", "PEFT writes the rank as \"r\"");
  cfg.r = j["r"].get<int64_t>();
  PREFOPT_REQUIRE(j.contains("lora_alpha") && j["lora_alpha"].is_number(), key("lora_alpha"), "expected a number",
                  "PEFT writes \"lora_alpha\"");
  cfg.lora_alpha = j["lora_alpha"].get<double>();
  if (j.contains("lora_dropout") && j["lora_dropout"].is_number()) cfg.lora_dropout = j["lora_dropout"].get<double>();
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    cfg.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  const auto flag_off = [&](const char* k) {
    PREFOPT_REQUIRE(!j.contains(k) || j[k].is_null() || j[k] == false, key(k), "is set; prefopt does not support it",
                    "merge the adapter with PEFT, or retrain without this option");
  };
  flag_off("use_rslora");
  flag_off("use_dora");
  flag_off("fan_in_fan_out");
  PREFOPT_REQUIRE(!j.contains("bias") || j["bias"] == "none", key("bias"), "expected \"none\", found " + j["bias"].dump(),
                  "adapters that train biases are not supported");
  PREFOPT_REQUIRE(!j.contains("layers_to_transform") || j["layers_to_transform"].is_null(), key("layers_to_transform"),
                  "is set; prefopt adapts every layer", "leave layers_to_transform null");
  PREFOPT_REQUIRE(!j.contains("rank_pattern") || j["rank_pattern"].is_null() || j["rank_pattern"].empty(),
                  key("rank_pattern"), "per-module ranks are not supported", "use one rank r");
  PREFOPT_REQUIRE(!j.contains("alpha_pattern") || j["alpha_pattern"].is_null() || j["alpha_pattern"].empty(),
                  key("alpha_pattern"), "per-module alphas are not supported", "use one lora_alpha");
  PREFOPT_REQUIRE(j.contains("target_modules") && (j["target_modules"].is_array() || j["target_modules"].is_string()),
                  key("target_modules"), "expected a list of module names or \"all-linear\"", "e.g. [\"q_proj\", \"v_proj\"]");
  std::string spec;
  if (j["target_modules"].is_string()) {
    spec = j["target_modules"].get<std::string>();
  } else {
    for (auto& v : j["target_modules"]) {
      PREFOPT_REQUIRE(v.is_string(), key("target_modules"), "expected strings, found " + v.dump(), "list module names");
      spec += (spec.empty() ? "" : ",") + v.get<std::string>();
    }
  }
  cfg.target_modules = parse_lora_targets(spec, key("target_modules"));

  const std::string wpath = dir + "/adapter_model.safetensors";
  PREFOPT_REQUIRE(file_exists(wpath), wpath, "missing",
                  "--adapter takes a directory with adapter_config.json and adapter_model.safetensors");
  auto tensors = io::load_safetensors(wpath, at::kFloat);
  auto a = empty_adapters(m, cfg);
  std::set<std::string> used;
  const auto dev = m.device();
  for (int64_t l = 0; l < m.config().num_hidden_layers; ++l)
    for (const auto& name : cfg.target_modules) {
      const int i = module_index(name);
      auto [out, in] = module_shape(m.config(), static_cast<LoraModule>(i));
      for (bool is_b : {false, true}) {
        const std::string k = LoraAdapters::key(l, static_cast<LoraModule>(i), is_b);
        std::vector<int64_t> want = is_b ? std::vector<int64_t>{out, cfg.r} : std::vector<int64_t>{cfg.r, in};
        auto it = tensors.find(k);
        if (it == tensors.end()) {  // PEFT may also name the adapter ("...lora_A.default.weight")
          std::string alt = k.substr(0, k.size() - 7) + ".default.weight";
          it = tensors.find(alt);
          PREFOPT_REQUIRE(it != tensors.end(), wpath,
                          fmt::format("missing tensor \"{}\" (expected shape [{}])", k, fmt::join(want, ", ")),
                          "the adapter was made for another model or other target_modules than adapter_config.json says");
        }
        PREFOPT_REQUIRE(it->second.sizes().vec() == want, wpath,
                        fmt::format("tensor \"{}\" has shape [{}], expected [{}] (r = {} and the model's sizes)", it->first,
                                    fmt::join(it->second.sizes().vec(), ", "), fmt::join(want, ", "), cfg.r),
                        "the adapter was made for another base model");
        used.insert(it->first);
        (is_b ? a->B : a->A)[l][i] = it->second.to(dev);
      }
    }
  for (auto& [k, t] : tensors)
    PREFOPT_REQUIRE(used.count(k), wpath, "unexpected tensor \"" + k + "\"",
                    "the adapter holds layers or modules this model or adapter_config.json's target_modules lack");
  m.set_lora(a);
}

void save_lora(const CausalLM& m, const std::string& dir) {
  const LoraAdapters* a = m.lora();
  PREFOPT_ASSERT(a, "save_lora on a model without adapters");
  std::map<std::string, at::Tensor> out;
  for (auto& [k, t] : a->named_parameters()) out[k] = t.detach().cpu();
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "CAUSAL_LM"},
                      {"r", a->cfg.r},
                      {"lora_alpha", a->cfg.lora_alpha},
                      {"lora_dropout", a->cfg.lora_dropout},
                      {"target_modules", a->cfg.target_modules},
                      {"base_model_name_or_path", a->cfg.base_model_name_or_path},
                      {"bias", "none"},
                      {"fan_in_fan_out", false},
                      {"inference_mode", true},
                      {"modules_to_save", nullptr},
                      {"init_lora_weights", true},
                      {"use_rslora", false},
                      {"use_dora", false},
                      {"layers_to_transform", nullptr},
                      {"rank_pattern", nlohmann::json::object()},
                      {"alpha_pattern", nlohmann::json::object()}};
  make_dirs(dir);
  io::save_safetensors(dir + "/adapter_model.safetensors", out, at::kFloat);
  atomic_write(dir + "/adapter_config.json", j.dump(2) + "\n");
}

void merge_lora(CausalLM& m) {
  LoraAdapters* a = m.lora();
  PREFOPT_ASSERT(a, "merge_lora on a model without adapters");
  at::NoGradGuard g;
  const double s = a->cfg.scale();
  for (int64_t l = 0; l < m.config().num_hidden_layers; ++l)
    for (int i = 0; i < kLoraModules; ++i) {
      if (!a->A[l][i].defined()) continue;
      at::Tensor& w = m.param(module_path(l, static_cast<LoraModule>(i)) + ".weight");
      auto delta = at::matmul(a->B[l][i].to(at::kFloat), a->A[l][i].to(at::kFloat)) * s;
      w.copy_((w.to(at::kFloat) + delta.to(w.device())).to(w.scalar_type()));
    }
  m.set_lora(nullptr);
}

AdaptersOff::AdaptersOff(const CausalLM& m) : a_(m.lora()), was_(a_ ? a_->enabled : false) {
  if (a_) a_->enabled = false;
}
AdaptersOff::~AdaptersOff() {
  if (a_) a_->enabled = was_;
}

}  // namespace prefopt
