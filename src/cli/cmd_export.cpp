// prefopt export --format gguf --model DIR --output F.gguf [--dtype f32|f16|q8_0]
//                [--tokenizer PATH] [--name NAME]
// Writes a GGUF v3 file that llama.cpp loads: the architecture's hyper-parameters, the
// tokenizer (tokenizer.ggml.*) and the weights under llama.cpp's tensor names, laid out as
// llama.cpp's convert_hf_to_gguf.py lays them out:
//   - Llama and Mistral become the "llama" architecture, Qwen2 "qwen2";
//   - for "llama" the rows of q_proj / k_proj (and their biases) are permuted from HF's
//     rotate-half RoPE layout to the interleaved pairs llama.cpp's RoPE uses: within each
//     head, row i of the first half and row i of the second half become rows 2i and 2i+1
//     (Qwen2 runs llama.cpp's NeoX RoPE, which is HF's layout: no permutation);
//   - 1-D tensors (norms, biases) stay f32; matrices take --dtype (q8_0 falls back to f16
//     for a matrix whose rows are not a multiple of 32 values).
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "io/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace prefopt::cli {

namespace {

using io::GgmlType;

struct ExportArgs {
  std::string format = "gguf", model, output, dtype = "f32", tokenizer, name;
};

// llama.cpp's token types (llama_token_type / gguf TokenType).
enum TokType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// The name llama.cpp gives a byte-level BPE pre-tokenizer (tokenizer.ggml.pre), from the
// split regexes of the tokenizer's pre-tokenizer; "" when llama.cpp has no equivalent.
std::string gguf_pre_name(const TokenizerImpl& t) {
  std::vector<std::string> pats;
  for (const PreStep& p : t.pre) {
    if (p.kind == PreKind::Metaspace) return "";
    if (p.kind == PreKind::ByteLevel && p.add_prefix_space) return "";
    if (p.kind == PreKind::Split && (p.invert || p.behavior != SplitBehavior::Isolated)) return "";
    if (p.re) pats.push_back(p.re->pattern());
  }
  if (pats.size() != 1) return "";
  if (pats[0] == kGpt2Pattern) return "gpt-2";
  if (pats[0] == kLlama3Pattern) return "llama-bpe";
  if (pats[0] == kQwen2Pattern) return "qwen2";
  return "";
}

// SentencePiece-style: "▁" for spaces (a Replace/Prepend normalizer or a Metaspace
// pre-tokenizer) and <0xNN> byte fallback; returns whether a "▁" is prepended.
bool spm_prefix(const TokenizerImpl& t) {
  for (const NormStep& n : t.norm)
    if (n.kind == NormKind::Prepend && n.a == "\xE2\x96\x81") return true;
  for (const PreStep& p : t.pre)
    if (p.kind == PreKind::Metaspace) return p.prepend_scheme != 0;
  return false;
}

void add_tokenizer(io::GgufWriter& w, const Tokenizer& tok, const ModelConfig& cfg, const std::string& tok_path) {
  const TokenizerImpl& t = tok.impl();
  const int64_t n = cfg.vocab_size;
  PREFOPT_REQUIRE(tok.vocab_size() <= n, tok_path,
                  fmt::format("the tokenizer has {} tokens, the model's vocab_size is {}", tok.vocab_size(), n),
                  "pass the model's own tokenizer (--tokenizer)");
  std::string model;
  if (t.byte_level) {
    model = "gpt2";
  } else if (t.model.byte_fallback) {
    model = "llama";
  } else {
    fail(tok_path, "the tokenizer is neither byte-level BPE nor SentencePiece-style BPE with byte fallback",
         "llama.cpp's BPE vocabularies are \"gpt2\" (byte-level) and \"llama\" (SentencePiece); export a model "
         "whose tokenizer is one of them");
  }
  std::string pre;
  if (model == "gpt2") {
    pre = gguf_pre_name(t);
    PREFOPT_REQUIRE(!pre.empty(), tok_path,
                    "the byte-level pre-tokenizer's split regex is not one llama.cpp knows",
                    "supported: the GPT-2 regex (\"gpt-2\"), Llama-3's (\"llama-bpe\") and Qwen2's (\"qwen2\")");
  }
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int32_t> types(size_t(n), kNormal);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = int32_t(i);
    std::string s = i < tok.vocab_size() ? t.token_str(id) : "";
    if (s.empty()) {  // a hole in the tokenizer or a row beyond it (vocab_size padded)
      tokens[i] = fmt::format("[PAD{}]", i);
      types[i] = kUnused;
      continue;
    }
    tokens[i] = s;
    if (t.model.unk == id) types[i] = kUnknown;
    else if (tok.is_added(id)) types[i] = tok.is_special(id) ? kControl : kUserDefined;
  }
  if (model == "llama") {
    for (int b = 0; b < 256; ++b)
      if (t.model.byte_ids[b] >= 0 && !tok.is_added(t.model.byte_ids[b])) types[t.model.byte_ids[b]] = kByte;
  }
  w.add_string("tokenizer.ggml.model", model);
  if (!pre.empty()) w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  if (model == "llama") {
    // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose joined piece has
    // the highest score; a piece's score is minus the rank of the merge that makes it.
    std::vector<float> scores(size_t(n), -1e9f);
    for (const auto& [key, rm] : t.model.merges) {
      (void)key;
      if (rm.second >= 0 && rm.second < n) scores[rm.second] = std::max(scores[rm.second], -float(rm.first));
    }
    for (int64_t i = 0; i < n; ++i)
      if (types[i] != kNormal) scores[i] = 0.f;
    w.add_f32_array("tokenizer.ggml.scores", scores);
  }
  w.add_i32_array("tokenizer.ggml.token_type", types);
  if (model == "gpt2") {
    std::vector<std::string> merges;
    merges.reserve(t.model.merge_list.size());
    for (auto [a, b] : t.model.merge_list) merges.push_back(t.model.id_to_token[a] + " " + t.model.id_to_token[b]);
    w.add_string_array("tokenizer.ggml.merges", merges);
  } else {
    w.add_bool("tokenizer.ggml.add_space_prefix", spm_prefix(t));
  }
  auto in_vocab = [&](int64_t id) { return id >= 0 && id < n; };
  std::optional<int32_t> bos = tok.bos_id(), eos = tok.eos_id(), pad = tok.pad_id();
  if (!bos && in_vocab(cfg.bos_token_id)) bos = int32_t(cfg.bos_token_id);
  if (!eos && !cfg.eos_token_ids.empty() && in_vocab(cfg.eos_token_ids[0])) eos = int32_t(cfg.eos_token_ids[0]);
  if (!pad && in_vocab(cfg.pad_token_id)) pad = int32_t(cfg.pad_token_id);
  if (bos) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(*bos));
  if (eos) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(*eos));
  if (pad) w.add_u32("tokenizer.ggml.padding_token_id", uint32_t(*pad));
  if (t.model.unk >= 0) w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(t.model.unk));
  const bool add_bos = bos && !t.post_prefix.empty() && t.post_prefix.front() == *bos;
  const bool add_eos = eos && !t.post_suffix.empty() && t.post_suffix.back() == *eos;
  w.add_bool("tokenizer.ggml.add_bos_token", add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", add_eos);
  if (!tok.chat_template_text().empty()) w.add_string("tokenizer.chat_template", tok.chat_template_text());
}

// HF rotate-half rows -> interleaved pairs, per head: [heads, 2, D/2, ...] -> [heads, D/2, 2, ...].
at::Tensor permute_rope_rows(const at::Tensor& w, int64_t heads) {
  std::vector<int64_t> shape = {heads, 2, w.size(0) / heads / 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

std::string tensor_bytes(const at::Tensor& x, GgmlType type) {
  at::Tensor c = x.to(at::kFloat).contiguous();
  const float* p = c.data_ptr<float>();
  const int64_t n = c.numel();
  std::string out;
  switch (type) {
    case GgmlType::F32: out.assign(reinterpret_cast<const char*>(p), size_t(n) * 4); break;
    case GgmlType::F16:
      out.resize(size_t(n) * 2);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = io::fp32_to_fp16(p[i]);
        std::memcpy(&out[size_t(i) * 2], &h, 2);
      }
      break;
    case GgmlType::Q8_0:
      out.resize(size_t(n / io::kQ8Block) * io::kQ8BlockBytes);
      io::quantize_q8_0(p, n, reinterpret_cast<uint8_t*>(out.data()));
      break;
  }
  return out;
}

// HF parameter name -> llama.cpp tensor name ("" when not exported).
std::string gguf_tensor_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string pre = "model.layers.";
  if (hf.rfind(pre, 0) != 0) return "";
  const size_t dot = hf.find('.', pre.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf.substr(pre.size(), dot - pre.size()), rest = hf.substr(dot + 1);
  static const std::pair<const char*, const char*> map[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},       {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},       {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},       {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},  {"self_attn.o_proj.bias", "attn_output.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},        {"mlp.gate_proj.bias", "ffn_gate.bias"},
      {"mlp.up_proj.weight", "ffn_up.weight"},            {"mlp.up_proj.bias", "ffn_up.bias"},
      {"mlp.down_proj.weight", "ffn_down.weight"},        {"mlp.down_proj.bias", "ffn_down.bias"},
  };
  for (const auto& [h, g] : map)
    if (rest == h) return "blk." + layer + "." + g;
  return "";
}

// llama3 rope scaling as llama.cpp takes it: a per-frequency divisor tensor rope_freqs.weight.
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const double low_wl = double(s.original_max_position_embeddings) / s.low_freq_factor;
  const double high_wl = double(s.original_max_position_embeddings) / s.high_freq_factor;
  std::vector<float> f;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    const double freq = 1.0 / std::pow(c.rope_theta, double(i) / double(c.head_dim));
    const double wl = 2 * M_PI / freq;
    if (wl < high_wl) {
      f.push_back(1.f);
    } else if (wl > low_wl) {
      f.push_back(float(s.factor));
    } else {
      const double smooth = (double(s.original_max_position_embeddings) / wl - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f.push_back(float(1.0 / ((1 - smooth) / s.factor + smooth)));
    }
  }
  return f;
}

void run_export(const ExportArgs& a) {
  PREFOPT_REQUIRE(a.format == "gguf", "--format", fmt::format("unknown format {:?}", a.format), "supported: gguf");
  GgmlType mtype = GgmlType::F32;
  uint32_t file_type = 0;
  if (a.dtype == "f32") mtype = GgmlType::F32, file_type = 0;
  else if (a.dtype == "f16") mtype = GgmlType::F16, file_type = 1;
  else if (a.dtype == "q8_0") mtype = GgmlType::Q8_0, file_type = 7;
  else fail("--dtype", fmt::format("unknown dtype {:?}", a.dtype), "one of f32, f16, q8_0");

  const ModelConfig cfg = load_config(a.model);
  const std::string cfg_path = is_directory(a.model) ? a.model + "/config.json" : a.model;
  std::string arch;
  if (cfg.family == Family::Llama || cfg.family == Family::Mistral) arch = "llama";
  else if (cfg.family == Family::Qwen2) arch = "qwen2";
  else
    fail(cfg_path, fmt::format("model_type \"{}\" has no GGUF export", cfg.model_type),
         "GGUF export supports llama, mistral and qwen2");
  if (cfg.sliding_window > 0 && cfg.sliding_window < cfg.max_position_embeddings)
    warn("export: {} uses a sliding window of {} tokens; llama.cpp's {} attends to the whole context", cfg_path,
         cfg.sliding_window, arch);

  const std::string tok_path = a.tokenizer.empty() ? a.model : a.tokenizer;
  const bool has_tok = !a.tokenizer.empty() || file_exists(a.model + "/tokenizer.json") ||
                       file_exists(a.model + "/vocab.json") || file_exists(a.model + "/tokenizer.model");
  PREFOPT_REQUIRE(has_tok, a.model, "no tokenizer files next to the model",
                  "a GGUF file carries its tokenizer: pass --tokenizer PATH (tokenizer.json, a directory or a .gguf)");
  const Tokenizer tok = Tokenizer::load(tok_path);
  auto m = CausalLM::from_pretrained(a.model);

  io::GgufWriter w(32);
  const std::string A = arch + ".";
  w.add_string("general.architecture", arch);
  w.add_string("general.name", a.name.empty() ? base_name(a.model) : a.name);
  w.add_u32("general.file_type", file_type);
  w.add_u32("general.quantization_version", 2);
  w.add_u32(A + "vocab_size", uint32_t(cfg.vocab_size));
  w.add_u32(A + "context_length", uint32_t(cfg.max_position_embeddings));
  w.add_u32(A + "embedding_length", uint32_t(cfg.hidden_size));
  w.add_u32(A + "block_count", uint32_t(cfg.num_hidden_layers));
  w.add_u32(A + "feed_forward_length", uint32_t(cfg.intermediate_size));
  w.add_u32(A + "attention.head_count", uint32_t(cfg.num_attention_heads));
  w.add_u32(A + "attention.head_count_kv", uint32_t(cfg.num_key_value_heads));
  w.add_u32(A + "rope.dimension_count", uint32_t(cfg.head_dim));
  if (cfg.head_dim * cfg.num_attention_heads != cfg.hidden_size) {
    w.add_u32(A + "attention.key_length", uint32_t(cfg.head_dim));
    w.add_u32(A + "attention.value_length", uint32_t(cfg.head_dim));
  }
  w.add_f32(A + "rope.freq_base", float(cfg.rope_theta));
  w.add_f32(A + "attention.layer_norm_rms_epsilon", float(cfg.rms_norm_eps));
  if (cfg.rope_scaling.type == "linear") {
    w.add_string(A + "rope.scaling.type", "linear");
    w.add_f32(A + "rope.scaling.factor", float(cfg.rope_scaling.factor));
  }
  add_tokenizer(w, tok, cfg, tok_path);

  const bool permute = arch == "llama";
  size_t fallback = 0;
  for (const auto& [hf, x] : m->named_parameters()) {
    const std::string name = gguf_tensor_name(hf);
    PREFOPT_ASSERT(!name.empty(), "no GGUF name for parameter {}", hf);
    at::Tensor v = x;
    if (permute && name.find(".attn_q.") != std::string::npos) v = permute_rope_rows(v, cfg.num_attention_heads);
    if (permute && name.find(".attn_k.") != std::string::npos) v = permute_rope_rows(v, cfg.num_key_value_heads);
    GgmlType type = v.dim() == 1 ? GgmlType::F32 : mtype;
    if (type == GgmlType::Q8_0 && v.size(-1) % io::kQ8Block != 0) type = GgmlType::F16, ++fallback;
    std::vector<int64_t> ne(v.sizes().rbegin(), v.sizes().rend());
    w.add_tensor(name, ne, type, [v, type] { return tensor_bytes(v, type); });
  }
  if (cfg.rope_scaling.type == "llama3") {
    auto f = llama3_rope_factors(cfg);
    w.add_tensor("rope_freqs.weight", {int64_t(f.size())}, GgmlType::F32,
                 [f] { return std::string(reinterpret_cast<const char*>(f.data()), f.size() * 4); });
  }
  if (fallback) warn("export: {} matrices have rows that are not a multiple of 32 values: written as f16", fallback);
  w.write(a.output);
  std::printf("%s\n", nlohmann::json{{"output", a.output}, {"format", "gguf"}, {"architecture", arch},
                                     {"dtype", a.dtype}, {"tensors", w.tensor_count()},
                                     {"vocab_size", cfg.vocab_size}}
                          .dump()
                          .c_str());
  info("export: {} -> {} ({}, {} tensors)", a.model, a.output, a.dtype, w.tensor_count());
}

}  // namespace

void register_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Export an HF model directory for other runtimes (GGUF for llama.cpp)");
  cmd->add_option("--format", a->format, "gguf")->check(CLI::IsMember({"gguf"}));
  cmd->add_option("--model", a->model, "HF model directory (config.json + safetensors + tokenizer)")->required();
  cmd->add_option("--output,-o", a->output, "the .gguf file to write")->required();
  cmd->add_option("--dtype", a->dtype, "f32 | f16 | q8_0 (1-D tensors stay f32)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer (default: the model directory)");
  cmd->add_option("--name", a->name, "general.name (default: the directory's name)");
  cmd->callback([a] { run_export(*a); });
}

}  // namespace prefopt::cli
