#include "model/config.h"

#include <cmath>
#include <map>
#include <set>

#include <fmt/ranges.h>

#include "core/error.h"
#include "core/fs.h"

namespace prefopt {
using json = nlohmann::json;

const char* to_string(Family f) {
  switch (f) {
    case Family::Llama: return "llama";
    case Family::Mistral: return "mistral";
    case Family::Qwen2: return "qwen2";
    case Family::Gemma: return "gemma";
    case Family::Gemma2: return "gemma2";
    case Family::GPT2: return "gpt2";
  }
  return "?";
}

double ModelConfig::attn_scale() const {
  if (family == Family::Gemma2 && query_pre_attn_scalar > 0) return 1.0 / std::sqrt(query_pre_attn_scalar);
  return 1.0 / std::sqrt(static_cast<double>(head_dim));
}

bool ModelConfig::layer_is_sliding(int64_t layer) const {
  if (sliding_window <= 0) return false;
  if (family == Family::Gemma2) return layer % 2 == 0;  // Gemma2: even layers slide
  return family == Family::Mistral || family == Family::Qwen2;
}

namespace {
constexpr int64_t kMaxSize = int64_t(1) << 31;  // no dimension of a real model comes near this
const char* const kFixHint = "fix config.json (it should be the one saved by transformers with the checkpoint)";

std::string found_str(const json& v) {
  std::string d = v.dump();
  if (d.size() > 60) d = d.substr(0, 57) + "...";
  const char* type = v.is_string() ? "a string" : v.is_boolean() ? "a boolean" : v.is_array() ? "an array"
                     : v.is_object() ? "an object" : v.is_number_float() ? "a floating-point number"
                                                                          : "an integer";
  return fmt::format("{} ({})", d, type);
}

struct Reader {
  const json& j;
  std::string where;  // the file
  std::string prefix;  // "" or "rope_scaling." for nested keys
  const json* find(const char* k) const {
    auto it = j.find(k);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void bad(const char* k, const std::string& expected, const json& v) const {
    fail(where, fmt::format("key \"{}{}\": expected {}, found {}", prefix, k, expected, found_str(v)), kFixHint);
  }
  [[noreturn]] void bad_value(const char* k, const std::string& expected, const std::string& found) const {
    fail(where, fmt::format("key \"{}{}\": expected {}, found {}", prefix, k, expected, found), kFixHint);
  }
  int64_t i(const char* k) const {
    auto* v = find(k);
    if (!v)
      fail(where, fmt::format("missing required key \"{}{}\" (an integer)", prefix, k),
           "fix config.json: transformers writes this key for this model_type");
    if (v->is_number_float()) {
      double x = v->get<double>();
      bad(k, x == std::floor(x) ? "an integer (written without a decimal point)" : "an integer, not a fraction", *v);
    }
    if (!v->is_number_integer()) bad(k, "an integer", *v);
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) bad(k, "an integer below 2^63", *v);
    return v->get<int64_t>();
  }
  int64_t i(const char* k, int64_t def) const { return find(k) ? i(k) : def; }
  // A size: an integer in [lo, 2^31).
  int64_t size(const char* k, int64_t lo = 1) const {
    int64_t x = i(k);
    check_size(k, x, lo);
    return x;
  }
  int64_t size(const char* k, int64_t def, int64_t lo) const { return find(k) ? size(k, lo) : def; }
  void check_size(const char* k, int64_t x, int64_t lo) const {
    if (x < lo)
      bad_value(k, lo == 1 ? "a positive integer" : fmt::format("an integer >= {}", lo), std::to_string(x));
    if (x >= kMaxSize) bad_value(k, "an integer below 2^31", std::to_string(x));
  }
  double d(const char* k, double def) const {
    auto* v = find(k);
    if (!v) return def;
    if (!v->is_number()) bad(k, "a number", *v);
    double x = v->get<double>();
    if (!std::isfinite(x)) bad(k, "a finite number", *v);
    return x;
  }
  double positive(const char* k, double def) const {
    double x = d(k, def);
    if (!(x > 0)) bad_value(k, "a positive number", fmt::format("{}", x));
    return x;
  }
  double non_negative(const char* k, double def) const {
    double x = d(k, def);
    if (x < 0) bad_value(k, "a number >= 0", fmt::format("{}", x));
    return x;
  }
  bool b(const char* k, bool def) const {
    auto* v = find(k);
    if (!v) return def;
    if (!v->is_boolean()) bad(k, "true or false", *v);
    return v->get<bool>();
  }
  std::string s(const char* k, const std::string& def) const {
    auto* v = find(k);
    if (!v) return def;
    if (!v->is_string()) bad(k, "a string", *v);
    return v->get<std::string>();
  }
  // A token id (or null/absent = none). Out-of-range ids are rejected.
  std::vector<int64_t> token_ids(const char* k, int64_t vocab, bool allow_list) const {
    auto* v = find(k);
    std::vector<int64_t> out;
    if (!v) return out;
    auto one = [&](const json& x) {
      if (!x.is_number_integer() || (x.is_number_unsigned() && x.get<uint64_t>() > uint64_t(INT64_MAX)))
        bad(k, allow_list ? "a token id or a list of token ids" : "a token id (an integer)", *v);
      int64_t id = x.get<int64_t>();
      if (id >= vocab)
        bad_value(k, fmt::format("a token id below vocab_size {}", vocab), std::to_string(id));
      if (id >= 0) out.push_back(id);  // a negative id (some old configs write -1) means none
    };
    if (v->is_array() && allow_list) {
      for (auto& x : *v) one(x);
    } else {
      one(*v);
    }
    return out;
  }
};

Activation parse_act(const std::string& a, const std::string& where, const char* key) {
  if (a == "silu" || a == "swish") return Activation::SiLU;
  if (a == "gelu_pytorch_tanh" || a == "gelu_new" || a == "gelu_fast" || a == "gelu_tanh") return Activation::GeluTanh;
  if (a == "gelu") return Activation::Gelu;
  if (a == "relu") return Activation::Relu;
  fail(where, fmt::format("key \"{}\": unsupported activation \"{}\"", key, a),
       "supported: silu, gelu, gelu_new, gelu_pytorch_tanh, relu");
}

struct FamilyName {
  const char* model_type;
  Family family;
  const char* architecture;  // the HF causal-LM class
};
const FamilyName kFamilies[] = {{"llama", Family::Llama, "LlamaForCausalLM"},
                                {"mistral", Family::Mistral, "MistralForCausalLM"},
                                {"qwen2", Family::Qwen2, "Qwen2ForCausalLM"},
                                {"gemma", Family::Gemma, "GemmaForCausalLM"},
                                {"gemma2", Family::Gemma2, "Gemma2ForCausalLM"},
                                {"gpt2", Family::GPT2, "GPT2LMHeadModel"}};
const char* const kFamilyHint =
    "supported model_type values: llama, mistral, qwen2, gemma, gemma2, gpt2 (Llama-architecture models such as "
    "TinyLlama, SmolLM and Llama-3 use \"llama\")";

// "architectures" (optional): a list of class names; the causal-LM class of
// model_type must be among them, and no other supported family's class.
void check_architectures(const Reader& r, const FamilyName& fam) {
  auto* a = r.find("architectures");
  if (!a) return;
  if (!a->is_array()) r.bad("architectures", "a list of class names", *a);
  bool ours = false;
  for (auto& x : *a) {
    if (!x.is_string()) r.bad("architectures", "a list of strings", *a);
    std::string name = x.get<std::string>();
    if (name == fam.architecture) ours = true;
    for (auto& f : kFamilies)
      if (name == f.architecture && f.family != fam.family)
        fail(r.where,
             fmt::format("key \"architectures\": {} is the class of model_type \"{}\", but model_type is \"{}\"", name,
                         f.model_type, fam.model_type),
             "model_type and architectures must describe the same model; fix one of them");
  }
  if (!ours)
    fail(r.where,
         fmt::format("key \"architectures\": expected [\"{}\"] for model_type \"{}\", found {}", fam.architecture,
                     fam.model_type, found_str(*a)),
         "prefopt loads causal language models only (no sequence-classification or encoder heads); " +
             std::string(kFamilyHint));
}
}  // namespace

ModelConfig parse_config(const json& j, const std::string& where) {
  if (!j.is_object())
    fail(where, fmt::format("expected a JSON object, found {}", found_str(j)),
         "config.json is an object of HF config keys ({\"model_type\": ..., \"hidden_size\": ...})");
  Reader r{j, where, ""};
  ModelConfig c;
  c.raw = j;
  if (!r.find("model_type"))
    fail(where, "missing required key \"model_type\"", std::string("add it; ") + kFamilyHint);
  c.model_type = r.s("model_type", "");
  const FamilyName* fam = nullptr;
  for (auto& f : kFamilies)
    if (c.model_type == f.model_type) fam = &f;
  if (!fam) fail(where, "key \"model_type\": unknown model_type \"" + c.model_type + "\"", kFamilyHint);
  c.family = fam->family;
  check_architectures(r, *fam);
  c.initializer_range = r.non_negative("initializer_range", 0.02);
  c.vocab_size = r.size("vocab_size");
  if (c.family == Family::GPT2) {
    c.hidden_size = r.size("n_embd");
    c.num_hidden_layers = r.size("n_layer");
    c.num_attention_heads = r.size("n_head");
    c.num_key_value_heads = c.num_attention_heads;
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(where,
           fmt::format("key \"n_embd\": {} is not divisible by n_head {}", c.hidden_size, c.num_attention_heads),
           "GPT-2 splits n_embd evenly over the heads; fix n_embd or n_head");
    c.intermediate_size = r.size("n_inner", 4 * c.hidden_size, 1);
    c.max_position_embeddings = r.size("n_positions");
    c.rms_norm_eps = r.positive("layer_norm_epsilon", 1e-5);
    c.act = parse_act(r.s("activation_function", "gelu_new"), where, "activation_function");
    c.tie_word_embeddings = r.b("tie_word_embeddings", true);
    c.attention_bias = true;
    c.mlp_bias = true;
    if (r.b("scale_attn_by_inverse_layer_idx", false) || r.b("reorder_and_upcast_attn", false))
      fail(where, "GPT-2 options scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported",
           "set them to false (the defaults); checkpoints trained with them need a different attention");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  } else {
    c.hidden_size = r.size("hidden_size");
    c.num_hidden_layers = r.size("num_hidden_layers");
    c.num_attention_heads = r.size("num_attention_heads");
    c.num_key_value_heads = r.size("num_key_value_heads", c.num_attention_heads, 1);
    if (c.num_attention_heads % c.num_key_value_heads != 0)
      fail(where,
           fmt::format("key \"num_key_value_heads\": {} does not divide num_attention_heads {}",
                       c.num_key_value_heads, c.num_attention_heads),
           "grouped-query attention shares each key/value head among num_attention_heads / num_key_value_heads "
           "query heads; fix one of the two");
    if (r.find("head_dim")) {
      c.head_dim = r.size("head_dim");
    } else {
      if (c.hidden_size % c.num_attention_heads != 0)
        fail(where,
             fmt::format("key \"hidden_size\": {} is not divisible by num_attention_heads {} (and there is no "
                         "\"head_dim\")",
                         c.hidden_size, c.num_attention_heads),
             "head_dim defaults to hidden_size / num_attention_heads; fix the sizes or give \"head_dim\"");
      c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    if (c.head_dim % 2 != 0)
      fail(where, fmt::format("head_dim {} is odd", c.head_dim),
           "rotary position embeddings rotate pairs of dimensions, so head_dim (hidden_size / num_attention_heads "
           "unless given) must be even");
    c.intermediate_size = r.size("intermediate_size");
    c.max_position_embeddings = r.size("max_position_embeddings", 2048, 1);
    c.rms_norm_eps = r.positive("rms_norm_eps", 1e-6);
    c.rope_theta = r.positive("rope_theta", 10000.0);
    bool gemma = c.family == Family::Gemma || c.family == Family::Gemma2;
    c.tie_word_embeddings = r.b("tie_word_embeddings", gemma);
    c.attention_bias = c.family == Family::Qwen2 ? true : r.b("attention_bias", false);
    c.mlp_bias = r.b("mlp_bias", false);
    const char* act_key = gemma && r.find("hidden_activation") ? "hidden_activation" : "hidden_act";
    std::string act = gemma ? r.s("hidden_activation", r.s("hidden_act", "gelu_pytorch_tanh")) : r.s("hidden_act", "silu");
    if (gemma && act == "gelu") act = "gelu_pytorch_tanh";  // HF Gemma forces the tanh approximation
    c.act = parse_act(act, where, act_key);
    if (auto* rs = r.find("rope_scaling")) {
      if (!rs->is_object()) r.bad("rope_scaling", "an object or null", *rs);
      Reader q{*rs, where, "rope_scaling."};
      c.rope_scaling.type = q.s("rope_type", q.s("type", ""));
      c.rope_scaling.factor = q.positive("factor", 1.0);
      if (c.rope_scaling.type == "llama3") {
        c.rope_scaling.low_freq_factor = q.positive("low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = q.positive("high_freq_factor", 4.0);
        if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor))
          q.bad_value("high_freq_factor",
                      fmt::format("a value above low_freq_factor {}", c.rope_scaling.low_freq_factor),
                      fmt::format("{}", c.rope_scaling.high_freq_factor));
        c.rope_scaling.original_max_position_embeddings = q.size("original_max_position_embeddings", 8192, 1);
      } else if (c.rope_scaling.type != "linear" && c.rope_scaling.type != "default") {
        fail(where, "key \"rope_scaling.rope_type\": unsupported rope_scaling type \"" + c.rope_scaling.type + "\"",
             "supported: linear, llama3 (or remove rope_scaling)");
      }
      if (c.rope_scaling.type == "default") c.rope_scaling.type = "";
    }
    if (c.family == Family::Mistral || c.family == Family::Qwen2 || c.family == Family::Gemma2) {
      bool use_sw = c.family != Family::Qwen2 || r.b("use_sliding_window", false);
      c.sliding_window = use_sw ? r.size("sliding_window", 0, 0) : 0;
    }
    if (c.family == Family::Gemma2) {
      c.attn_logit_softcapping = r.non_negative("attn_logit_softcapping", 0.0);
      c.final_logit_softcapping = r.non_negative("final_logit_softcapping", 0.0);
      c.query_pre_attn_scalar = r.non_negative("query_pre_attn_scalar", 0.0);
    }
  }
  c.eos_token_ids = r.token_ids("eos_token_id", c.vocab_size, true);
  auto bos = r.token_ids("bos_token_id", c.vocab_size, false);
  auto pad = r.token_ids("pad_token_id", c.vocab_size, false);
  c.bos_token_id = bos.empty() ? -1 : bos[0];
  c.pad_token_id = pad.empty() ? -1 : pad[0];
  return c;
}

TensorLayout expected_tensors(const ModelConfig& c) {
  const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  auto L = [](int64_t i, const char* rest) { return "model.layers." + std::to_string(i) + "." + rest; };
  auto G = [](int64_t i, const char* rest) { return "transformer.h." + std::to_string(i) + "." + rest; };
  TensorLayout lay;
  if (c.family == Family::GPT2) {
    lay.push_back({"transformer.wte.weight", {V, H}});
    lay.push_back({"transformer.wpe.weight", {c.max_position_embeddings, H}});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      lay.push_back({G(i, "ln_1.weight"), {H}});
      lay.push_back({G(i, "ln_1.bias"), {H}});
      lay.push_back({G(i, "attn.c_attn.weight"), {H, 3 * H}});
      lay.push_back({G(i, "attn.c_attn.bias"), {3 * H}});
      lay.push_back({G(i, "attn.c_proj.weight"), {H, H}});
      lay.push_back({G(i, "attn.c_proj.bias"), {H}});
      lay.push_back({G(i, "ln_2.weight"), {H}});
      lay.push_back({G(i, "ln_2.bias"), {H}});
      lay.push_back({G(i, "mlp.c_fc.weight"), {H, I}});
      lay.push_back({G(i, "mlp.c_fc.bias"), {I}});
      lay.push_back({G(i, "mlp.c_proj.weight"), {I, H}});
      lay.push_back({G(i, "mlp.c_proj.bias"), {H}});
    }
    lay.push_back({"transformer.ln_f.weight", {H}});
    lay.push_back({"transformer.ln_f.bias", {H}});
  } else {
    const bool qkv_bias = c.attention_bias;
    const bool o_bias = c.family == Family::Llama && c.attention_bias;
    lay.push_back({"model.embed_tokens.weight", {V, H}});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      lay.push_back({L(i, "self_attn.q_proj.weight"), {Hq * D, H}});
      if (qkv_bias) lay.push_back({L(i, "self_attn.q_proj.bias"), {Hq * D}});
      lay.push_back({L(i, "self_attn.k_proj.weight"), {Hkv * D, H}});
      if (qkv_bias) lay.push_back({L(i, "self_attn.k_proj.bias"), {Hkv * D}});
      lay.push_back({L(i, "self_attn.v_proj.weight"), {Hkv * D, H}});
      if (qkv_bias) lay.push_back({L(i, "self_attn.v_proj.bias"), {Hkv * D}});
      lay.push_back({L(i, "self_attn.o_proj.weight"), {H, Hq * D}});
      if (o_bias) lay.push_back({L(i, "self_attn.o_proj.bias"), {H}});
      lay.push_back({L(i, "mlp.gate_proj.weight"), {I, H}});
      if (c.mlp_bias) lay.push_back({L(i, "mlp.gate_proj.bias"), {I}});
      lay.push_back({L(i, "mlp.up_proj.weight"), {I, H}});
      if (c.mlp_bias) lay.push_back({L(i, "mlp.up_proj.bias"), {I}});
      lay.push_back({L(i, "mlp.down_proj.weight"), {H, I}});
      if (c.mlp_bias) lay.push_back({L(i, "mlp.down_proj.bias"), {H}});
      lay.push_back({L(i, "input_layernorm.weight"), {H}});
      lay.push_back({L(i, "post_attention_layernorm.weight"), {H}});
      if (c.family == Family::Gemma2) {
        lay.push_back({L(i, "pre_feedforward_layernorm.weight"), {H}});
        lay.push_back({L(i, "post_feedforward_layernorm.weight"), {H}});
      }
    }
    lay.push_back({"model.norm.weight", {H}});
  }
  if (!c.tie_word_embeddings) lay.push_back({"lm_head.weight", {V, H}});
  return lay;
}

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }
}  // namespace

void check_checkpoint(const ModelConfig& c, const std::vector<CheckpointTensor>& found,
                      const std::string& config_file) {
  std::map<std::string, const CheckpointTensor*> by_name;
  std::set<std::string> files;
  for (auto& t : found) {
    by_name[t.name] = &t;
    files.insert(t.file);
  }
  auto files_str = [&] {
    if (files.empty()) return std::string("the checkpoint (no tensors)");
    if (files.size() == 1) return *files.begin();
    return fmt::format("the checkpoint files ({})", fmt::join(files, ", "));
  };
  const std::string sizes =
      c.family == Family::GPT2
          ? fmt::format("vocab_size {}, n_embd {}, n_layer {}, n_head {}, n_inner {}, n_positions {}", c.vocab_size,
                        c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
                        c.max_position_embeddings)
          : fmt::format("vocab_size {}, hidden_size {}, num_hidden_layers {}, num_attention_heads {}, "
                        "num_key_value_heads {}, head_dim {}, intermediate_size {}",
                        c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                        c.num_key_value_heads, c.head_dim, c.intermediate_size);
  std::set<std::string> used;
  for (auto& [name, shape] : expected_tensors(c)) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      if (name == "lm_head.weight")
        fail(files_str(),
             fmt::format("missing tensor \"lm_head.weight\" (expected shape {}): {} says tie_word_embeddings is "
                         "false, so the output layer must be stored",
                         shape_str(shape), config_file),
             "if the model shares its output layer with the input embedding, set \"tie_word_embeddings\": true in "
             "config.json; otherwise the checkpoint is incomplete");
      fail(files_str(), fmt::format("missing tensor \"{}\" (expected shape {} from {}: {})", name, shape_str(shape),
                                    config_file, sizes),
           "the checkpoint does not match config.json; check model_type, num_hidden_layers and the bias flags");
    }
    const CheckpointTensor& t = *it->second;
    if (t.shape != shape)
      fail(t.file,
           fmt::format("tensor \"{}\" has shape {}, expected {} from {} ({})", name, shape_str(t.shape),
                       shape_str(shape), config_file, sizes),
           "the checkpoint does not match config.json (hidden_size, heads, head_dim, intermediate_size, "
           "vocab_size?)");
    if (!t.floating)
      fail(t.file, fmt::format("tensor \"{}\" has dtype {}, expected a floating-point dtype (F32, F16, BF16, F64)",
                               name, t.dtype),
           "model weights are floating point; the file is corrupt or not this model's checkpoint");
    used.insert(name);
  }
  for (auto& t : found) {
    if (used.count(t.name)) continue;
    bool ignorable = (c.tie_word_embeddings && t.name == "lm_head.weight") ||
                     t.name.find("rotary_emb.inv_freq") != std::string::npos ||
                     (c.family == Family::GPT2 && (ends_with(t.name, ".attn.bias") || ends_with(t.name, ".attn.masked_bias")));
    if (!ignorable)
      fail(t.file, "unexpected tensor \"" + t.name + "\" not used by a " + to_string(c.family) + " model of " +
                       config_file + " (" + sizes + ")",
           "the checkpoint does not match config.json (extra layers? a different architecture?)");
  }
}

ModelConfig load_config(const std::string& path) {
  std::string file = is_directory(path) ? path + "/config.json" : path;
  if (!file_exists(file))
    fail(file, "config.json not found (the model directory has no config.json)", "point --model at a Hugging Face model directory (config.json + *.safetensors)");
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::exception& e) {
    fail(file, std::string("malformed JSON: ") + e.what(), "fix or re-save config.json");
  }
  return parse_config(j, file);
}

json config_to_json(const ModelConfig& c) {
  json j = c.raw.is_object() ? c.raw : json::object();
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["initializer_range"] = c.initializer_range;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.family == Family::GPT2) {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["n_embd"] = c.hidden_size;
    j["n_layer"] = c.num_hidden_layers;
    j["n_head"] = c.num_attention_heads;
    j["n_inner"] = c.intermediate_size;
    j["n_positions"] = c.max_position_embeddings;
    j["layer_norm_epsilon"] = c.rms_norm_eps;
  } else {
    static const char* arch[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                 "GemmaForCausalLM", "Gemma2ForCausalLM"};
    j["architectures"] = {arch[static_cast<int>(c.family)]};
    j["hidden_size"] = c.hidden_size;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["num_key_value_heads"] = c.num_key_value_heads;
    j["intermediate_size"] = c.intermediate_size;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rms_norm_eps"] = c.rms_norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["head_dim"] = c.head_dim;
    if (c.family == Family::Llama) {
      j["attention_bias"] = c.attention_bias;
      j["mlp_bias"] = c.mlp_bias;
      j["hidden_act"] = c.act == Activation::SiLU ? "silu" : "gelu";
    }
  }
  if (!c.eos_token_ids.empty())
    j["eos_token_id"] = c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  j["torch_dtype"] = "float32";
  return j;
}

ModelConfig llama_config(int64_t vocab, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                         int64_t intermediate, int64_t max_positions, bool tie) {
  json j = {{"model_type", "llama"},          {"vocab_size", vocab},
            {"hidden_size", hidden},          {"num_hidden_layers", layers},
            {"num_attention_heads", heads},   {"num_key_value_heads", kv_heads},
            {"intermediate_size", intermediate}, {"max_position_embeddings", max_positions},
            {"rms_norm_eps", 1e-6},           {"rope_theta", 10000.0},
            {"tie_word_embeddings", tie},     {"hidden_act", "silu"},
            {"initializer_range", 0.02},      {"architectures", {"LlamaForCausalLM"}}};
  return parse_config(j, "<built-in llama config>");
}

}  // namespace prefopt
