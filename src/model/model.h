// prefopt model: one decoder with family switches (Llama, Mistral, Qwen2,
// Gemma, Gemma2, GPT-2). Parameters live under exactly the HF state_dict keys,
// so loading is "read config, read every shard, assign by name".
//
// Shapes: B batch, T new tokens, S keys (past + T), H hidden, V vocab,
//         Hq query heads, Hkv key/value heads, D head_dim.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "model/attention.h"  // AttentionKind
#include "model/config.h"
#include "model/runtime.h"  // configure_threads

namespace prefopt {

struct LoraAdapters;  // model/lora.h

// Per-layer keys/values after RoPE, [B,Hkv,S,D], and the key positions [B,S]
// (used for sliding windows). Grows by concatenation.
struct KVCache {
  std::vector<at::Tensor> k, v;
  at::Tensor key_mask;  // [B,S] 1 = real token (2-D mask path), kept for the next step
  at::Tensor key_pos;   // [B,S] position ids of the cached keys
  int64_t length() const;
  // Repeat every row n times (row b -> rows b*n .. b*n+n-1): one prompt
  // prefill shared by n samples.
  void expand_batch(int64_t n);
  // Keep only the rows in `index` (int64 [B']).
  void select_batch(const at::Tensor& index);
  void clear();
};

class CausalLM {
 public:
  static std::unique_ptr<CausalLM> from_pretrained(const std::string& dir, at::Device device = at::kCPU,
                                                   at::ScalarType dtype = at::kFloat);
  // Random init like HF's _init_weights: normal(0, initializer_range) for
  // linear/embedding weights, zero biases, norms 1 (Gemma's (1+w) norms 0).
  static std::unique_ptr<CausalLM> from_config(const ModelConfig& cfg, uint64_t seed,
                                               at::Device device = at::kCPU, at::ScalarType dtype = at::kFloat);
  std::unique_ptr<CausalLM> clone() const;  // deep copy of the base weights (no adapters)

  // Writes config.json + model.safetensors into `dir` (atomically, as a whole
  // directory); a tied lm_head is omitted as HF does. Other files already in
  // `dir` are kept.
  void save_pretrained(const std::string& dir, at::ScalarType dtype = at::kFloat) const;

  const ModelConfig& config() const { return cfg_; }
  std::vector<std::pair<std::string, at::Tensor>>& named_parameters() { return params_; }
  const std::vector<std::pair<std::string, at::Tensor>>& named_parameters() const { return params_; }
  at::Tensor& param(const std::string& name);
  void set_requires_grad(bool on);
  int64_t num_parameters() const;
  at::Device device() const;
  at::ScalarType dtype() const;
  void to(at::Device device, at::ScalarType dtype);

  // input_ids [B,T] int64, position_ids [B,T], attn_mask either a 2-D [B,S]
  // padding mask (1 = real token, S = past + T; causality added here) or a 4-D
  // bool [B,1,T,S] mask (true = may attend) given whole by the caller.
  // Returns the final-normed hidden states [B,T,H].
  at::Tensor forward_hidden(const at::Tensor& input_ids, const at::Tensor& position_ids, const at::Tensor& attn_mask,
                            KVCache* cache = nullptr) const;
  // lm_head weight [V,H] (the embedding when tied) and the final soft-cap.
  at::Tensor lm_head_weight() const;
  double final_logit_softcap() const { return cfg_.final_logit_softcapping; }
  // hidden [...,H] -> logits [...,V], soft-capped (materialises V: small uses only).
  at::Tensor logits(const at::Tensor& hidden) const;
  // Convenience: logits [B,T,V] for right- or left-padded ids with a 2-D mask.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;

  // LoRA adapters (model/lora.h): null when none are attached. When attached
  // and enabled, every adapted linear layer adds its adapter term; disabled,
  // the forward is the base model's. Not part of named_parameters().
  LoraAdapters* lora() const { return lora_.get(); }
  void set_lora(std::shared_ptr<LoraAdapters> a) { lora_ = std::move(a); }
  void set_adapters_enabled(bool on);  // no-op without adapters

  // Training memory (copied by clone()). attention: eager, chunked
  // (model/attention.h) or auto (= eager: measured faster here; see
  // docs/training.md). gradient_checkpointing: while recording a graph, each
  // decoder layer keeps only its input and is recomputed in backward
  // (model/checkpointing.h).
  void set_attention(AttentionKind k) { attention_ = k; }
  AttentionKind attention() const { return attention_; }
  void set_gradient_checkpointing(bool on) { checkpointing_ = on; }
  bool gradient_checkpointing() const { return checkpointing_; }

 private:
  CausalLM() = default;
  void init_layout();  // expected names and shapes
  void bind();         // resolve per-layer tensor pointers
  struct Layer;
  struct LayerCtx;  // what every layer of one forward shares (masks, RoPE tables, ...)
  at::Tensor layer_forward(int64_t li, const at::Tensor& h, const LayerCtx& lc, KVCache* cache) const;
  AttentionKind attention_ = AttentionKind::Auto;
  bool checkpointing_ = false;
  ModelConfig cfg_;
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<std::pair<std::string, std::vector<int64_t>>> layout_;  // expected (name, shape)
  std::vector<Layer> layers_;
  at::Tensor embed_, pos_embed_, final_norm_w_, final_norm_b_, lm_head_;
  at::Tensor inv_freq_;
  std::shared_ptr<LoraAdapters> lora_;
};

struct CausalLM::Layer {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b, pre_ff_w, post_ff_w;
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;  // GPT-2: q_w = c_attn.weight [H,3H], o = c_proj
  at::Tensor gate_w, gate_b, up_w, up_b, down_w, down_b;  // GPT-2: up = c_fc, down = c_proj
};

// The tensors of a model directory's safetensors files (headers only, each
// validated), for check_checkpoint (model/config.h). For a sharded checkpoint,
// the tensors its index assigns to each shard.
std::vector<CheckpointTensor> scan_checkpoint(const std::string& dir);

// HF's rule: cumsum(mask) - 1, pads set to 1. mask2d [B,S] -> [B,S] int64.
at::Tensor position_ids_from_mask(const at::Tensor& mask2d);

// Greedy decoding with the KV cache; prompts of different lengths are left-padded.
// Returns the new tokens of each prompt (stopping after a stop id, included).
std::vector<std::vector<int64_t>> greedy_generate(const CausalLM& model,
                                                  const std::vector<std::vector<int64_t>>& prompts,
                                                  int max_new_tokens, const std::vector<int64_t>& stop_ids);

// log p(x[t+1] | x[<=t]) for every next token of each sequence (no padding
// inside `ids`); computed under no-grad, chunked over tokens.
std::vector<std::vector<float>> token_logprobs(const CausalLM& model, const std::vector<std::vector<int64_t>>& ids);

}  // namespace prefopt
