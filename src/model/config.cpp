#include "model/config.h"

#include <cmath>

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
struct Reader {
  const json& j;
  std::string where;
  const json* find(const char* k) const {
    auto it = j.find(k);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void bad(const char* k, const char* expected, const json& v) const {
    fail(where, fmt::format("key \"{}\": expected {}, found {}", k, expected, v.dump()),
         "fix config.json (it should be the one saved by transformers with the checkpoint)");
  }
  int64_t i(const char* k) const {
    auto* v = find(k);
    if (!v) fail(where, fmt::format("missing required key \"{}\"", k), "fix config.json");
    if (!v->is_number_integer()) bad(k, "an integer", *v);
    return v->get<int64_t>();
  }
  int64_t i(const char* k, int64_t def) const { return find(k) ? i(k) : def; }
  double d(const char* k, double def) const {
    auto* v = find(k);
    if (!v) return def;
    if (!v->is_number()) bad(k, "a number", *v);
    return v->get<double>();
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
};

Activation parse_act(const std::string& a, const std::string& where) {
  if (a == "silu" || a == "swish") return Activation::SiLU;
  if (a == "gelu_pytorch_tanh" || a == "gelu_new" || a == "gelu_fast" || a == "gelu_tanh") return Activation::GeluTanh;
  if (a == "gelu") return Activation::Gelu;
  if (a == "relu") return Activation::Relu;
  fail(where, "unsupported activation \"" + a + "\"", "supported: silu, gelu, gelu_new, gelu_pytorch_tanh, relu");
}
}  // namespace

ModelConfig parse_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "config is not a JSON object");
  Reader r{j, where};
  ModelConfig c;
  c.raw = j;
  c.model_type = r.s("model_type", "");
  if (c.model_type == "llama") c.family = Family::Llama;
  else if (c.model_type == "mistral") c.family = Family::Mistral;
  else if (c.model_type == "qwen2") c.family = Family::Qwen2;
  else if (c.model_type == "gemma") c.family = Family::Gemma;
  else if (c.model_type == "gemma2") c.family = Family::Gemma2;
  else if (c.model_type == "gpt2") c.family = Family::GPT2;
  else
    fail(where, "unknown model_type \"" + c.model_type + "\"",
         "supported: llama, mistral, qwen2, gemma, gemma2, gpt2 (Llama-architecture models such as TinyLlama, "
         "SmolLM and Llama-3 use \"llama\")");
  c.initializer_range = r.d("initializer_range", 0.02);
  c.vocab_size = r.i("vocab_size");
  if (c.family == Family::GPT2) {
    c.hidden_size = r.i("n_embd");
    c.num_hidden_layers = r.i("n_layer");
    c.num_attention_heads = r.i("n_head");
    c.num_key_value_heads = c.num_attention_heads;
    c.intermediate_size = r.i("n_inner", 4 * c.hidden_size);
    c.max_position_embeddings = r.i("n_positions");
    c.rms_norm_eps = r.d("layer_norm_epsilon", 1e-5);
    c.act = parse_act(r.s("activation_function", "gelu_new"), where);
    c.tie_word_embeddings = r.b("tie_word_embeddings", true);
    c.attention_bias = true;
    c.mlp_bias = true;
    if (r.b("scale_attn_by_inverse_layer_idx", false) || r.b("reorder_and_upcast_attn", false))
      fail(where, "GPT-2 options scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
  } else {
    c.hidden_size = r.i("hidden_size");
    c.num_hidden_layers = r.i("num_hidden_layers");
    c.num_attention_heads = r.i("num_attention_heads");
    c.num_key_value_heads = r.i("num_key_value_heads", c.num_attention_heads);
    c.intermediate_size = r.i("intermediate_size");
    c.max_position_embeddings = r.i("max_position_embeddings", 2048);
    c.rms_norm_eps = r.d("rms_norm_eps", 1e-6);
    c.rope_theta = r.d("rope_theta", 10000.0);
    bool gemma = c.family == Family::Gemma || c.family == Family::Gemma2;
    c.tie_word_embeddings = r.b("tie_word_embeddings", gemma);
    c.attention_bias = c.family == Family::Qwen2 ? true : r.b("attention_bias", false);
    c.mlp_bias = r.b("mlp_bias", false);
    std::string act = gemma ? r.s("hidden_activation", r.s("hidden_act", "gelu_pytorch_tanh")) : r.s("hidden_act", "silu");
    if (gemma && act == "gelu") act = "gelu_pytorch_tanh";  // HF Gemma forces the tanh approximation
    c.act = parse_act(act, where);
    if (auto* rs = r.find("rope_scaling")) {
      if (!rs->is_object()) fail(where, "key \"rope_scaling\": expected an object or null");
      Reader q{*rs, where + " rope_scaling"};
      c.rope_scaling.type = q.s("rope_type", q.s("type", ""));
      c.rope_scaling.factor = q.d("factor", 1.0);
      if (c.rope_scaling.type == "llama3") {
        c.rope_scaling.low_freq_factor = q.d("low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = q.d("high_freq_factor", 4.0);
        c.rope_scaling.original_max_position_embeddings = q.i("original_max_position_embeddings", 8192);
      } else if (c.rope_scaling.type != "linear" && c.rope_scaling.type != "default") {
        fail(where, "unsupported rope_scaling type \"" + c.rope_scaling.type + "\"", "supported: linear, llama3");
      }
      if (c.rope_scaling.type == "default") c.rope_scaling.type = "";
    }
    if (c.family == Family::Mistral || c.family == Family::Qwen2 || c.family == Family::Gemma2) {
      bool use_sw = c.family != Family::Qwen2 || r.b("use_sliding_window", false);
      c.sliding_window = use_sw ? r.i("sliding_window", 0) : 0;
    }
    if (c.family == Family::Gemma2) {
      c.attn_logit_softcapping = r.d("attn_logit_softcapping", 0.0);
      c.final_logit_softcapping = r.d("final_logit_softcapping", 0.0);
      c.query_pre_attn_scalar = r.d("query_pre_attn_scalar", 0.0);
    }
  }
  c.head_dim = c.family == Family::GPT2 ? c.hidden_size / c.num_attention_heads
                                        : r.i("head_dim", c.hidden_size / c.num_attention_heads);
  if (c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    fail(where, fmt::format("num_attention_heads {} must be a positive multiple of num_key_value_heads {}",
                            c.num_attention_heads, c.num_key_value_heads));
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_hidden_layers <= 0 || c.head_dim <= 0)
    fail(where, "vocab_size, hidden size, layer count and head_dim must be positive");
  if (auto* e = r.find("eos_token_id")) {
    if (e->is_number_integer()) c.eos_token_ids.push_back(e->get<int64_t>());
    else if (e->is_array())
      for (auto& x : *e)
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int64_t>());
  }
  c.bos_token_id = r.find("bos_token_id") && r.find("bos_token_id")->is_number_integer() ? r.i("bos_token_id") : -1;
  c.pad_token_id = r.find("pad_token_id") && r.find("pad_token_id")->is_number_integer() ? r.i("pad_token_id") : -1;
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::string file = is_directory(path) ? path + "/config.json" : path;
  if (!file_exists(file))
    fail(file, "config.json not found", "point --model at a Hugging Face model directory (config.json + *.safetensors)");
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::parse_error& e) {
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
