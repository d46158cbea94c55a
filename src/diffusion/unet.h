// prefopt diffusion: a small text-conditioned UNet for ε-prediction, in plain
// ATen (parameters in a name -> tensor map, autograd by libtorch).
//
//   text encoder: token + position embeddings, concatenated over the fixed
//                 kTokens positions (word order matters: binding), 2-layer MLP
//   timestep:     sinusoidal embedding, 2-layer MLP; cond = text + time
//   UNet:         input + 2 coordinate channels -> conv_in (C) ->
//                 res(C) @16 -> down -> res(2C) @8 -> down -> res(2C) @4 (mid) ->
//                 up, concat skip -> res(2C) @8 -> up, concat skip -> res(C) @16 ->
//                 GroupNorm, SiLU, conv_out (3)
//   res block:    GN, SiLU, conv3x3, GN, FiLM (h·(1+scale)+shift from cond), SiLU,
//                 conv3x3 (zero-initialised), + skip (1x1 when channels change)
//   attention:    (cross_attention_dim > 0) after down.1, mid, up.1 and up.0:
//                 h + to_out(softmax(q kᵀ/√d) v), q from GN(h) per position, k and v
//                 from the token + position embeddings, multi-head, to_out zero-initialised
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

namespace prefopt::diffusion {

struct UNetConfig {
  int sample_size = 16;
  int in_channels = 3;
  int out_channels = 3;
  int base_channels = 32;
  int cond_dim = 128;
  int time_embed_dim = 64;
  int token_dim = 32;
  int vocab_size = 14;
  int max_tokens = 8;
  int norm_groups = 8;
  // > 0: cross-attention from the feature map to the caption's token embeddings
  // after the res blocks at 8x8, 4x4 and on the way up (heads of this total width).
  int cross_attention_dim = 0;
  int attention_heads = 4;
};
nlohmann::json to_json(const UNetConfig& c);
// Reads the fields back; throws prefopt::Error naming `where` on a missing or bad field.
UNetConfig unet_config_from_json(const nlohmann::json& j, const std::string& where);

class TinyUNet {
 public:
  TinyUNet() = default;
  TinyUNet(const UNetConfig& cfg, uint64_t seed);
  // x_t (B, 3, H, W) float, t (B) int64 timesteps, tokens (B, kTokens) int64 -> ε (B, 3, H, W).
  at::Tensor forward(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& tokens) const;
  const UNetConfig& config() const { return cfg_; }
  std::map<std::string, at::Tensor>& params() { return params_; }
  const std::map<std::string, at::Tensor>& params() const { return params_; }
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  void set_requires_grad(bool on);
  TinyUNet clone() const;  // a detached deep copy
  // Replaces the weights; throws naming `where` when names or shapes differ.
  void load(const std::map<std::string, at::Tensor>& tensors, const std::string& where);
  int64_t num_parameters() const;
  // One cross-attention block (`n` as "mid.attn") on a feature map and token embeddings, for tests.
  at::Tensor attention_for_test(const std::string& n, const at::Tensor& x, const at::Tensor& tok) const {
    return attention(n, x, tok);
  }

 private:
  UNetConfig cfg_;
  std::map<std::string, at::Tensor> params_;
  at::Tensor p(const std::string& n) const;
  at::Tensor res_block(const std::string& n, const at::Tensor& x, const at::Tensor& cond) const;
  at::Tensor attention(const std::string& n, const at::Tensor& x, const at::Tensor& tok) const;
};

// Sinusoidal timestep embedding (cos half first, as diffusers' flip_sin_to_cos).
at::Tensor timestep_embedding(const at::Tensor& t, int dim);

}  // namespace prefopt::diffusion
