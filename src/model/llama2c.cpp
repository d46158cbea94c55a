// llama2.c legacy checkpoint -> HF Llama. Shapes: L layers, C dim, F hidden_dim,
// Hq/Hkv heads, D = C/Hq head size, V vocab.
#include "model/llama2c.h"

#include <ATen/ATen.h>

#include <cstring>
#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"

namespace prefopt {

namespace {

// llama2.c rotates interleaved pairs (2j, 2j+1); HF rotates (j, j+D/2).
// Row h*D + t*D/2 + j of the HF weight is row h*D + 2j + t of llama2.c's.
at::Tensor interleaved_to_halves(const at::Tensor& w, int64_t heads) {
  int64_t rows = w.size(0), cols = w.size(1), D = rows / heads;
  return w.view({heads, D / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

}  // namespace

std::unique_ptr<CausalLM> load_llama2c(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 28) fail(path, fmt::format("llama2.c header needs 28 bytes, the file has {}", bytes.size()));
  int32_t h[7];
  std::memcpy(h, bytes.data(), sizeof h);
  const int64_t C = h[0], F = h[1], L = h[2], Hq = h[3], Hkv = h[4], seq = h[6];
  const bool shared = h[5] > 0;
  const int64_t V = shared ? h[5] : -static_cast<int64_t>(h[5]);
  if (C <= 0 || F <= 0 || L <= 0 || Hq <= 0 || Hkv <= 0 || V <= 0 || seq <= 0 || C % Hq || Hq % Hkv || (C / Hq) % 2)
    fail(path, fmt::format("implausible llama2.c header dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} "
                           "vocab_size={} seq_len={}", C, F, L, Hq, Hkv, h[5], seq),
         "is this a llama2.c legacy (version 0) checkpoint?");
  const int64_t D = C / Hq, KV = Hkv * D;
  const int64_t n = V * C + L * (2 * C + C * C + 2 * KV * C + C * C + 3 * F * C) + C + seq * D + (shared ? 0 : V * C);
  if (static_cast<int64_t>(bytes.size()) != 28 + 4 * n)
    fail(path, fmt::format("expected {} bytes for this header, found {}", 28 + 4 * n, bytes.size()),
         "truncated file, or a llama2.c version-1/2 export (only the legacy format is read)");
  const float* p = reinterpret_cast<const float*>(bytes.data() + 28);
  auto take = [&](std::vector<int64_t> shape) {
    int64_t k = 1;
    for (auto d : shape) k *= d;
    auto t = at::from_blob(const_cast<float*>(p), shape, at::kFloat).clone();
    p += k;
    return t;
  };
  auto emb = take({V, C}), rms_att = take({L, C}), wq = take({L, C, C}), wk = take({L, KV, C}),
       wv = take({L, KV, C}), wo = take({L, C, C}), rms_ffn = take({L, C}), w1 = take({L, F, C}),
       w2 = take({L, C, F}), w3 = take({L, F, C}), rms_final = take({C});
  p += seq * D;  // freq_cis_real, freq_cis_imag: recomputed by the model (theta 1e4)
  at::Tensor wcls = shared ? at::Tensor() : take({V, C});

  ModelConfig cfg = llama_config(V, C, L, Hq, Hkv, F, seq, shared);
  cfg.rms_norm_eps = 1e-5;
  cfg.bos_token_id = 1;
  cfg.eos_token_ids = {2};
  auto m = CausalLM::from_config(cfg, 0);
  at::NoGradGuard ng;
  m->param("model.embed_tokens.weight").copy_(emb);
  m->param("model.norm.weight").copy_(rms_final);
  if (!shared) m->param("lm_head.weight").copy_(wcls);
  for (int64_t i = 0; i < L; ++i) {
    auto k = [&](const char* s) -> at::Tensor& { return m->param(fmt::format("model.layers.{}.{}", i, s)); };
    k("input_layernorm.weight").copy_(rms_att[i]);
    k("post_attention_layernorm.weight").copy_(rms_ffn[i]);
    k("self_attn.q_proj.weight").copy_(interleaved_to_halves(wq[i], Hq));
    k("self_attn.k_proj.weight").copy_(interleaved_to_halves(wk[i], Hkv));
    k("self_attn.v_proj.weight").copy_(wv[i]);
    k("self_attn.o_proj.weight").copy_(wo[i]);
    k("mlp.gate_proj.weight").copy_(w1[i]);
    k("mlp.down_proj.weight").copy_(w2[i]);
    k("mlp.up_proj.weight").copy_(w3[i]);
  }
  return m;
}

}  // namespace prefopt
