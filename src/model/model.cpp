// One decoder for Llama, Mistral, Qwen2, Gemma, Gemma2 and GPT-2, matching
// transformers 4.44's eager implementations (modeling_llama.py & co.).
// Shapes: B batch, T new tokens, S keys (past + T), H hidden, V vocab,
//         Hq query heads, Hkv kv heads, R = Hq / Hkv, D head_dim, I intermediate.
#include "model/model.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/checkpointing.h"
#include "model/lora.h"

namespace prefopt {

// ---------------------------------------------------------------- KV cache
int64_t KVCache::length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }

void KVCache::expand_batch(int64_t n) {
  auto rep = [n](at::Tensor& t) {
    if (t.defined()) t = t.repeat_interleave(n, 0);
  };
  for (auto& t : k) rep(t);
  for (auto& t : v) rep(t);
  rep(key_mask);
  rep(key_pos);
}

void KVCache::select_batch(const at::Tensor& index) {
  auto sel = [&](at::Tensor& t) {
    if (t.defined()) t = t.index_select(0, index.to(t.device()));
  };
  for (auto& t : k) sel(t);
  for (auto& t : v) sel(t);
  sel(key_mask);
  sel(key_pos);
}

void KVCache::clear() {
  k.clear();
  v.clear();
  key_mask = at::Tensor();
  key_pos = at::Tensor();
}

// ---------------------------------------------------------------- layout
static std::string L(int64_t i, const std::string& rest) { return "model.layers." + std::to_string(i) + "." + rest; }
static std::string G(int64_t i, const std::string& rest) { return "transformer.h." + std::to_string(i) + "." + rest; }

void CausalLM::init_layout() { layout_ = expected_tensors(cfg_); }

at::Tensor& CausalLM::param(const std::string& name) {
  for (auto& [n, t] : params_)
    if (n == name) return t;
  fail("model", "no parameter named \"" + name + "\"");
}

void CausalLM::bind() {
  std::map<std::string, at::Tensor> m;
  for (auto& [n, t] : params_) m[n] = t;
  auto get = [&](const std::string& n) { return m.count(n) ? m[n] : at::Tensor(); };
  const auto& c = cfg_;
  layers_.assign(c.num_hidden_layers, Layer{});
  if (c.family == Family::GPT2) {
    embed_ = get("transformer.wte.weight");
    pos_embed_ = get("transformer.wpe.weight");
    final_norm_w_ = get("transformer.ln_f.weight");
    final_norm_b_ = get("transformer.ln_f.bias");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      auto& l = layers_[i];
      l.ln1_w = get(G(i, "ln_1.weight")), l.ln1_b = get(G(i, "ln_1.bias"));
      l.q_w = get(G(i, "attn.c_attn.weight")), l.q_b = get(G(i, "attn.c_attn.bias"));
      l.o_w = get(G(i, "attn.c_proj.weight")), l.o_b = get(G(i, "attn.c_proj.bias"));
      l.ln2_w = get(G(i, "ln_2.weight")), l.ln2_b = get(G(i, "ln_2.bias"));
      l.up_w = get(G(i, "mlp.c_fc.weight")), l.up_b = get(G(i, "mlp.c_fc.bias"));
      l.down_w = get(G(i, "mlp.c_proj.weight")), l.down_b = get(G(i, "mlp.c_proj.bias"));
    }
  } else {
    embed_ = get("model.embed_tokens.weight");
    final_norm_w_ = get("model.norm.weight");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      auto& l = layers_[i];
      l.q_w = get(L(i, "self_attn.q_proj.weight")), l.q_b = get(L(i, "self_attn.q_proj.bias"));
      l.k_w = get(L(i, "self_attn.k_proj.weight")), l.k_b = get(L(i, "self_attn.k_proj.bias"));
      l.v_w = get(L(i, "self_attn.v_proj.weight")), l.v_b = get(L(i, "self_attn.v_proj.bias"));
      l.o_w = get(L(i, "self_attn.o_proj.weight")), l.o_b = get(L(i, "self_attn.o_proj.bias"));
      l.gate_w = get(L(i, "mlp.gate_proj.weight")), l.gate_b = get(L(i, "mlp.gate_proj.bias"));
      l.up_w = get(L(i, "mlp.up_proj.weight")), l.up_b = get(L(i, "mlp.up_proj.bias"));
      l.down_w = get(L(i, "mlp.down_proj.weight")), l.down_b = get(L(i, "mlp.down_proj.bias"));
      l.ln1_w = get(L(i, "input_layernorm.weight"));
      l.ln2_w = get(L(i, "post_attention_layernorm.weight"));
      l.pre_ff_w = get(L(i, "pre_feedforward_layernorm.weight"));
      l.post_ff_w = get(L(i, "post_feedforward_layernorm.weight"));
    }
  }
  lm_head_ = c.tie_word_embeddings ? embed_ : get("lm_head.weight");
  // RoPE inverse frequencies (fp32), with linear / llama3 scaling.
  if (c.family != Family::GPT2) {
    const int64_t D = c.head_dim;
    auto inv = 1.0 / at::pow(c.rope_theta, at::arange(0, D, 2, at::kLong).to(at::kFloat) / static_cast<double>(D));
    const auto& rs = c.rope_scaling;
    if (rs.type == "linear") inv = inv / rs.factor;
    if (rs.type == "llama3") {
      double old_len = static_cast<double>(rs.original_max_position_embeddings);
      double low_wl = old_len / rs.low_freq_factor, high_wl = old_len / rs.high_freq_factor;
      auto acc = inv.accessor<float, 1>();
      for (int64_t j = 0; j < inv.size(0); ++j) {
        double f = acc[j], wl = 2 * M_PI / f;
        if (wl < high_wl) continue;
        if (wl > low_wl) {
          acc[j] = static_cast<float>(f / rs.factor);
        } else {
          double smooth = (old_len / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
          acc[j] = static_cast<float>((1 - smooth) * f / rs.factor + smooth * f);
        }
      }
    }
    inv_freq_ = inv.to(embed_.device());
  }
}

// ---------------------------------------------------------------- construction
std::vector<CheckpointTensor> scan_checkpoint(const std::string& dir) {
  io::CheckpointFiles cf = io::checkpoint_files(dir);
  std::vector<CheckpointTensor> out;
  for (auto& file : cf.files) {
    io::SafetensorsFile f(file);  // validates the header; reads no tensor data
    for (auto& t : f.header().tensors) {
      if (!cf.index.empty()) {
        auto it = cf.weight_map.find(t.name);
        if (it == cf.weight_map.end() || it->second != file) continue;  // the index decides, as in transformers
      }
      CheckpointTensor c;
      c.name = t.name;
      c.file = file;
      c.dtype = io::to_string(t.dtype);
      c.shape = t.shape;
      c.floating = t.dtype == io::StDType::F32 || t.dtype == io::StDType::F16 || t.dtype == io::StDType::BF16 ||
                   t.dtype == io::StDType::F64;
      out.push_back(std::move(c));
    }
    if (!cf.index.empty())
      for (auto& [name, shard] : cf.weight_map)
        PREFOPT_REQUIRE(shard != file || f.has(name), file,
                        "tensor \"" + name + "\" listed in " + cf.index + " is missing from this shard",
                        "the index and the shards come from different saves; re-save the checkpoint");
  }
  return out;
}

std::unique_ptr<CausalLM> CausalLM::from_pretrained(const std::string& dir, at::Device device, at::ScalarType dtype) {
  std::unique_ptr<CausalLM> m(new CausalLM());
  m->cfg_ = load_config(dir);
  m->init_layout();
  // Every header is validated against config.json before any tensor is read.
  check_checkpoint(m->cfg_, scan_checkpoint(dir), is_directory(dir) ? dir + "/config.json" : dir);
  auto tensors = io::load_safetensors_dir(dir, dtype);
  for (auto& [name, shape] : m->layout_) {
    auto it = tensors.find(name);
    PREFOPT_ASSERT(it != tensors.end() && it->second.sizes().vec() == shape, "tensor {} passed the checks but is absent",
                   name);
    m->params_.push_back({name, it->second.to(device)});
  }
  m->bind();
  return m;
}

std::unique_ptr<CausalLM> CausalLM::from_config(const ModelConfig& cfg, uint64_t seed, at::Device device,
                                                at::ScalarType dtype) {
  std::unique_ptr<CausalLM> m(new CausalLM());
  m->cfg_ = cfg;
  m->init_layout();
  Rng rng(seed);
  const bool gemma = cfg.family == Family::Gemma || cfg.family == Family::Gemma2;
  for (auto& [name, shape] : m->layout_) {
    at::Tensor t = at::empty(shape, at::kFloat);
    const bool is_norm = name.find("norm") != std::string::npos || name.find("ln_") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm && !is_bias) {
      t.fill_(gemma ? 0.0 : 1.0);
    } else if (is_bias) {
      t.zero_();
    } else {  // normal(0, initializer_range) by Box-Muller over the portable Rng
      float* p = t.data_ptr<float>();
      int64_t n = t.numel();
      for (int64_t i = 0; i < n; i += 2) {
        double u1 = rng.uniform(), u2 = rng.uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        double r = std::sqrt(-2.0 * std::log(u1)) * cfg.initializer_range;
        p[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
        if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
      }
    }
    m->params_.push_back({name, t.to(device, dtype)});
  }
  m->bind();
  return m;
}

std::unique_ptr<CausalLM> CausalLM::clone() const {
  std::unique_ptr<CausalLM> m(new CausalLM());
  m->cfg_ = cfg_;
  m->layout_ = layout_;
  m->attention_ = attention_;
  m->checkpointing_ = checkpointing_;
  for (auto& [n, t] : params_) m->params_.push_back({n, t.detach().clone()});
  m->bind();
  return m;
}

void CausalLM::save_pretrained(const std::string& dir, at::ScalarType dtype) const {
  std::map<std::string, at::Tensor> out;
  for (auto& [n, t] : params_) out[n] = t;
  nlohmann::json cj = config_to_json(cfg_);
  cj["torch_dtype"] = dtype == at::kBFloat16 ? "bfloat16" : "float32";
  atomic_write_dir(dir, [&](const std::string& tmp) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(dir, ec))
      for (auto& e : fs::directory_iterator(dir)) {
        auto fname = e.path().filename().string();
        if (fname == "config.json" || fname.rfind("model.safetensors", 0) == 0 || fname.rfind("model-", 0) == 0)
          continue;
        fs::copy(e.path(), fs::path(tmp) / fname, fs::copy_options::recursive);
      }
    atomic_write(tmp + "/config.json", cj.dump(2) + "\n");
    io::save_safetensors(tmp + "/model.safetensors", out, dtype);
  });
}

void CausalLM::set_adapters_enabled(bool on) {
  if (lora_) lora_->enabled = on;
}

void CausalLM::set_requires_grad(bool on) {
  for (auto& [n, t] : params_) t.requires_grad_(on);
}
int64_t CausalLM::num_parameters() const {
  int64_t n = 0;
  for (auto& [k, t] : params_) n += t.numel();
  return n;
}
at::Device CausalLM::device() const { return params_.front().second.device(); }
at::ScalarType CausalLM::dtype() const { return params_.front().second.scalar_type(); }
void CausalLM::to(at::Device device, at::ScalarType dtype) {
  for (auto& [n, t] : params_) {
    bool rg = t.requires_grad();
    t = t.detach().to(device, dtype).requires_grad_(rg);
  }
  if (lora_)  // adapters stay fp32
    for (auto* side : {&lora_->A, &lora_->B})
      for (auto& mods : *side)
        for (auto& t : mods)
          if (t.defined()) {
            bool rg = t.requires_grad();
            t = t.detach().to(device).requires_grad_(rg);
          }
  bind();
}

at::Tensor CausalLM::lm_head_weight() const { return lm_head_; }

// ---------------------------------------------------------------- forward
static at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps, bool one_plus) {
  auto xf = x.to(at::kFloat);
  auto y = xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps);
  if (one_plus) return (y * (1.0 + w.to(at::kFloat))).to(x.scalar_type());
  return w * y.to(x.scalar_type());
}

static at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return at::linear(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt);
}

static at::Tensor act(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::SiLU: return at::silu(x);
    case Activation::GeluTanh: return at::gelu(x, "tanh");
    case Activation::Gelu: return at::gelu(x);
    case Activation::Relu: return at::relu(x);
  }
  return x;
}

static at::Tensor rotate_half(const at::Tensor& x) {
  auto h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

struct CausalLM::LayerCtx {
  int64_t B = 0, T = 0, S = 0;
  at::Tensor cos, sin;                // [B,1,T,D] RoPE tables (undefined for GPT-2)
  at::Tensor allowed;                 // [B,1,T,S] bool
  at::Tensor sliding_allowed;         // the same within the sliding window (undefined: none)
  AttentionArgs attn;
  AttentionKind kind = AttentionKind::Eager;
  const LoraAdapters* adapters = nullptr;  // enabled adapters, or null
  bool training = false;                   // adapter dropout (captured: backward may recompute later)
};

at::Tensor CausalLM::layer_forward(int64_t li, const at::Tensor& h_in, const LayerCtx& lc, KVCache* cache) const {
  const auto& c = cfg_;
  const int64_t B = lc.B, T = lc.T;
  const int64_t H = c.hidden_size, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim;
  const bool gemma = c.family == Family::Gemma || c.family == Family::Gemma2;
  const bool gpt2 = c.family == Family::GPT2;
  const LoraAdapters* ad = lc.adapters;
  const at::Tensor& cos = lc.cos;
  const at::Tensor& sin = lc.sin;
  at::Tensor h = h_in;
  const Layer& l = layers_[li];
  // A linear layer of this decoder layer, with its LoRA adapter when one is on.
  auto proj = [&](LoraModule m, const at::Tensor& in, const at::Tensor& w, const at::Tensor& b) {
    const int mi = static_cast<int>(m);
    if (!ad || !ad->A[li][mi].defined()) return linear(in, w, b);
    return lora_linear(in, w, b, ad->A[li][mi], ad->B[li][mi], ad->cfg.scale(), ad->cfg.lora_dropout, lc.training);
  };
  at::Tensor x, q, k, v;
  if (gpt2) {
    x = at::layer_norm(h, {H}, l.ln1_w, l.ln1_b, c.rms_norm_eps);
    auto qkv = at::addmm(l.q_b, x.reshape({B * T, H}), l.q_w).view({B, T, 3 * H});
    auto parts = qkv.split(H, -1);
    q = parts[0], k = parts[1], v = parts[2];
  } else {
    x = rms_norm(h, l.ln1_w, c.rms_norm_eps, gemma);
    q = proj(LoraModule::Q, x, l.q_w, l.q_b), k = proj(LoraModule::K, x, l.k_w, l.k_b);
    v = proj(LoraModule::V, x, l.v_w, l.v_b);
  }
  q = q.view({B, T, Hq, D}).transpose(1, 2);   // [B,Hq,T,D]
  k = k.view({B, T, Hkv, D}).transpose(1, 2);  // [B,Hkv,T,D]
  v = v.view({B, T, Hkv, D}).transpose(1, 2);
  if (!gpt2) {
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
  }
  if (cache) {
    if (cache->k[li].defined()) {
      k = at::cat({cache->k[li], k}, 2);
      v = at::cat({cache->v[li], v}, 2);
    }
    cache->k[li] = k, cache->v[li] = v;
  }
  const at::Tensor& al = lc.sliding_allowed.defined() && c.layer_is_sliding(li) ? lc.sliding_allowed : lc.allowed;
  auto o = lc.kind == AttentionKind::Chunked ? attention_chunked(q, k, v, al, lc.attn) : attention_eager(q, k, v, al, lc.attn);
  o = o.transpose(1, 2).reshape({B, T, Hq * D});  // [B,T,Hq*D]
  if (gpt2) {
    o = at::addmm(l.o_b, o.reshape({B * T, H}), l.o_w).view({B, T, H});
    h = h + o;
    x = at::layer_norm(h, {H}, l.ln2_w, l.ln2_b, c.rms_norm_eps);
    auto m = act(at::addmm(l.up_b, x.reshape({B * T, H}), l.up_w), c.act);
    h = h + at::addmm(l.down_b, m, l.down_w).view({B, T, H});
  } else {
    o = proj(LoraModule::O, o, l.o_w, l.o_b);
    if (c.family == Family::Gemma2) {
      h = h + rms_norm(o, l.ln2_w, c.rms_norm_eps, true);
      x = rms_norm(h, l.pre_ff_w, c.rms_norm_eps, true);
      auto m = proj(LoraModule::Down, act(proj(LoraModule::Gate, x, l.gate_w, l.gate_b), c.act) * proj(LoraModule::Up, x, l.up_w, l.up_b),
               l.down_w, l.down_b);
      h = h + rms_norm(m, l.post_ff_w, c.rms_norm_eps, true);
    } else {
      h = h + o;
      x = rms_norm(h, l.ln2_w, c.rms_norm_eps, gemma);
      h = h + proj(LoraModule::Down, act(proj(LoraModule::Gate, x, l.gate_w, l.gate_b), c.act) * proj(LoraModule::Up, x, l.up_w, l.up_b),
               l.down_w, l.down_b);
    }
  }
  return h;
}

at::Tensor CausalLM::forward_hidden(const at::Tensor& input_ids, const at::Tensor& position_ids,
                                    const at::Tensor& attn_mask, KVCache* cache) const {
  const auto& c = cfg_;
  PREFOPT_CHECK(input_ids.dim() == 2, "forward: input_ids must be [B,T], got {} dims", input_ids.dim());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  PREFOPT_CHECK(position_ids.sizes() == input_ids.sizes(), "forward: position_ids must be [B,T] like input_ids");
  const int64_t past = cache ? cache->length() : 0;
  const int64_t S = past + T;
  const auto dev = embed_.device();
  const auto dt = embed_.scalar_type();
  auto ids = input_ids.to(dev);
  auto pos = position_ids.to(dev).to(at::kLong);
  {
    auto mx = ids.max().item<int64_t>(), mn = ids.min().item<int64_t>();
    PREFOPT_CHECK(mn >= 0 && mx < c.vocab_size, "forward: token id {} outside the vocabulary [0, {})",
                  mn < 0 ? mn : mx, c.vocab_size);
  }

  // allowed [B,1,T,S] (true = may attend)
  at::Tensor allowed;
  if (attn_mask.dim() == 2) {
    PREFOPT_CHECK(attn_mask.size(0) == B && attn_mask.size(1) == S,
                  "forward: 2-D attention mask must be [B, past+T] = [{}, {}], got [{}, {}]", B, S, attn_mask.size(0),
                  attn_mask.size(1));
    auto km = attn_mask.to(dev).to(at::kBool);                                       // [B,S]
    auto qi = at::arange(past, S, at::TensorOptions().dtype(at::kLong).device(dev));  // [T]
    auto ki = at::arange(0, S, at::TensorOptions().dtype(at::kLong).device(dev));     // [S]
    auto causal = ki.unsqueeze(0) <= qi.unsqueeze(1);                                 // [T,S]
    allowed = causal.unsqueeze(0).unsqueeze(0) & km.unsqueeze(1).unsqueeze(1);
  } else {
    PREFOPT_CHECK(attn_mask.dim() == 4 && attn_mask.size(0) == B && attn_mask.size(2) == T && attn_mask.size(3) == S,
                  "forward: 4-D attention mask must be [B,1,T,S] = [{},1,{},{}]", B, T, S);
    allowed = attn_mask.to(dev).to(at::kBool);
  }
  at::Tensor key_pos = cache && cache->key_pos.defined() ? at::cat({cache->key_pos, pos}, 1) : pos;  // [B,S]
  if (cache) {
    cache->key_pos = key_pos;
    if (cache->k.size() != static_cast<size_t>(c.num_hidden_layers)) {
      cache->k.assign(c.num_hidden_layers, at::Tensor());
      cache->v.assign(c.num_hidden_layers, at::Tensor());
    }
  }
  at::Tensor sliding_allowed;
  if (c.sliding_window > 0 && S > c.sliding_window) {
    auto diff = pos.unsqueeze(2) - key_pos.unsqueeze(1);  // [B,T,S]
    sliding_allowed = allowed & (diff < c.sliding_window).unsqueeze(1);
  }

  const int64_t H = c.hidden_size;
  const bool gemma = c.family == Family::Gemma || c.family == Family::Gemma2;
  const bool gpt2 = c.family == Family::GPT2;

  at::Tensor h = at::embedding(embed_, ids);  // [B,T,H]
  if (gemma) h = h * at::scalar_tensor(std::sqrt(static_cast<double>(H)), h.options());
  if (gpt2) {
    PREFOPT_CHECK(pos.max().item<int64_t>() < c.max_position_embeddings,
                  "forward: position {} beyond GPT-2's n_positions {}", pos.max().item<int64_t>(),
                  c.max_position_embeddings);
    h = h + at::embedding(pos_embed_, pos);
  }
  at::Tensor cos, sin;
  if (!gpt2) {
    auto freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq_.view({1, 1, -1});  // [B,T,D/2]
    auto emb = at::cat({freqs, freqs}, -1);
    cos = emb.cos().to(dt).unsqueeze(1);  // [B,1,T,D]
    sin = emb.sin().to(dt).unsqueeze(1);
  }
  const double min_val = dt == at::kBFloat16 ? -3.3895313892515355e38
                       : dt == at::kHalf     ? -65504.0
                       : dt == at::kDouble   ? std::numeric_limits<double>::lowest()
                                             : static_cast<double>(std::numeric_limits<float>::lowest());

  LayerCtx lc;
  lc.B = B, lc.T = T, lc.S = S;
  lc.cos = cos, lc.sin = sin, lc.allowed = allowed, lc.sliding_allowed = sliding_allowed;
  lc.attn.scale = c.attn_scale();
  lc.attn.softcap = c.attn_logit_softcapping;
  lc.attn.min_value = min_val;
  lc.adapters = lora_ && lora_->enabled ? lora_.get() : nullptr;
  lc.training = lc.adapters && lc.adapters->training;
  const bool recording = at::GradMode::is_enabled();
  // auto = eager: on this 2-core CPU, with OpenBLAS's two threads shared with
  // other jobs, the chunked kernel's extra and smaller GEMMs made a DPO step
  // slower (docs/training.md); chunked is the memory-lean choice on request.
  lc.kind = attention_ != AttentionKind::Auto ? attention_ : AttentionKind::Eager;
  const bool checkpoint = checkpointing_ && recording && !cache;
  for (int64_t li = 0; li < c.num_hidden_layers; ++li) {
    if (!checkpoint) {
      h = layer_forward(li, h, lc, cache);
      continue;
    }
    // The tensors of this layer that may need gradients: its weights and its adapters.
    std::vector<at::Tensor> params;
    const Layer& l = layers_[li];
    for (const at::Tensor* t : {&l.ln1_w, &l.ln1_b, &l.ln2_w, &l.ln2_b, &l.pre_ff_w, &l.post_ff_w, &l.q_w, &l.q_b,
                                &l.k_w, &l.k_b, &l.v_w, &l.v_b, &l.o_w, &l.o_b, &l.gate_w, &l.gate_b, &l.up_w,
                                &l.up_b, &l.down_w, &l.down_b})
      if (t->defined() && t->requires_grad()) params.push_back(*t);
    if (lc.adapters)
      for (int m = 0; m < kLoraModules; ++m)
        for (const at::Tensor* t : {&lc.adapters->A[li][m], &lc.adapters->B[li][m]})
          if (t->defined() && t->requires_grad()) params.push_back(*t);
    const bool rng = lc.training && lc.adapters->cfg.lora_dropout > 0;
    h = checkpointed([this, li, lc](const at::Tensor& x) { return layer_forward(li, x, lc, nullptr); }, h, params,
                     rng);
  }
  if (gpt2) return at::layer_norm(h, {H}, final_norm_w_, final_norm_b_, c.rms_norm_eps);
  return rms_norm(h, final_norm_w_, c.rms_norm_eps, gemma);
}

at::Tensor CausalLM::logits(const at::Tensor& hidden) const {
  auto z = at::matmul(hidden, lm_head_.t());
  double cap = cfg_.final_logit_softcapping;
  if (cap > 0) z = at::tanh(z / cap) * cap;
  return z;
}

at::Tensor CausalLM::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  auto pos = position_ids_from_mask(attention_mask);
  return logits(forward_hidden(input_ids, pos, attention_mask));
}

at::Tensor position_ids_from_mask(const at::Tensor& mask2d) {
  auto m = mask2d.to(at::kLong);
  return (m.cumsum(-1) - 1).masked_fill(m == 0, 1);
}

// ---------------------------------------------------------------- helpers
std::vector<std::vector<int64_t>> greedy_generate(const CausalLM& model,
                                                  const std::vector<std::vector<int64_t>>& prompts,
                                                  int max_new_tokens, const std::vector<int64_t>& stop_ids) {
  at::NoGradGuard ng;
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int64_t>> out(B);
  if (B == 0 || max_new_tokens <= 0) return out;
  size_t Tmax = 0;
  for (auto& p : prompts) {
    PREFOPT_CHECK(!p.empty(), "generate: empty prompt");
    Tmax = std::max(Tmax, p.size());
  }
  auto ids = at::zeros({B, static_cast<int64_t>(Tmax)}, at::kLong);
  auto mask = at::zeros({B, static_cast<int64_t>(Tmax)}, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    int64_t off = static_cast<int64_t>(Tmax - prompts[b].size());
    for (size_t t = 0; t < prompts[b].size(); ++t) {
      ids[b][off + t] = prompts[b][t];
      mask[b][off + t] = 1;
    }
  }
  const auto dev = model.device();
  ids = ids.to(dev), mask = mask.to(dev);
  auto pos = position_ids_from_mask(mask);
  KVCache cache;
  auto h = model.forward_hidden(ids, pos, mask, &cache);
  std::vector<bool> done(B, false);
  auto next_pos = pos.select(1, pos.size(1) - 1).unsqueeze(1) + 1;  // [B,1]
  for (int step = 0; step < max_new_tokens; ++step) {
    auto last = h.select(1, h.size(1) - 1);          // [B,H]
    auto next = model.logits(last).argmax(-1).cpu();  // [B]
    bool all = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      int64_t t = next[b].item<int64_t>();
      out[b].push_back(t);
      if (std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end()) done[b] = true;
      all = all && done[b];
    }
    if (all || step + 1 == max_new_tokens) break;
    mask = at::cat({mask, at::ones({B, 1}, mask.options())}, 1);
    h = model.forward_hidden(next.view({B, 1}).to(dev), next_pos, mask, &cache);
    next_pos = next_pos + 1;
  }
  return out;
}

std::vector<std::vector<float>> token_logprobs(const CausalLM& model, const std::vector<std::vector<int64_t>>& seqs) {
  at::NoGradGuard ng;
  std::vector<std::vector<float>> out;
  const auto dev = model.device();
  const int64_t chunk = 1024;
  for (auto& s : seqs) {
    std::vector<float> lp;
    const int64_t T = static_cast<int64_t>(s.size());
    if (T >= 2) {
      auto ids = at::tensor(s, at::kLong).view({1, T}).to(dev);
      auto mask = at::ones({1, T}, at::kLong).to(dev);
      auto h = model.forward_hidden(ids, position_ids_from_mask(mask), mask)[0];  // [T,H]
      for (int64_t a = 0; a < T - 1; a += chunk) {
        int64_t n = std::min(chunk, T - 1 - a);
        auto z = model.logits(h.narrow(0, a, n)).to(at::kFloat);  // [n,V]
        auto l = at::log_softmax(z, -1).gather(1, ids[0].narrow(0, a + 1, n).unsqueeze(1)).squeeze(1).cpu();
        auto acc = l.accessor<float, 1>();
        for (int64_t i = 0; i < n; ++i) lp.push_back(acc[i]);
      }
    }
    out.push_back(std::move(lp));
  }
  return out;
}

}  // namespace prefopt
