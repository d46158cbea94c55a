// Attention kernels in ATen ops (see attention.h). Shapes as there; n = rows
// of a query chunk.
#include "model/attention.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace prefopt {

AttentionKind parse_attention(const char* s, const char* origin) {
  if (!std::strcmp(s, "auto")) return AttentionKind::Auto;
  if (!std::strcmp(s, "eager")) return AttentionKind::Eager;
  if (!std::strcmp(s, "chunked")) return AttentionKind::Chunked;
  fail(origin, std::string("unknown attention \"") + s + "\"", "use auto, eager or chunked");
}

const char* to_string(AttentionKind k) {
  switch (k) {
    case AttentionKind::Auto: return "auto";
    case AttentionKind::Eager: return "eager";
    case AttentionKind::Chunked: return "chunked";
  }
  return "?";
}

// Softmax precision: fp32 (as transformers' eager attention), fp64 for fp64 inputs (tests).
static at::ScalarType soft_type(const at::Tensor& q) { return q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// The mask fill in the scores' own dtype: under autocast the scores of an
// fp32 model are bf16 / fp16, whose lowest values are above fp32's.
static double fill_for(const at::Tensor& scores, double requested) {
  switch (scores.scalar_type()) {
    case at::kBFloat16: return std::max(requested, -3.3895313892515355e38);
    case at::kHalf: return std::max(requested, -65504.0);
    default: return requested;
  }
}

at::Tensor attention_eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                           const AttentionArgs& a) {
  const int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), R = Hq / Hkv;
  auto qg = q.reshape({B, Hkv, R * T, D});
  auto scores = at::matmul(qg, k.transpose(-1, -2)) * a.scale;  // [B,Hkv,R*T,S]
  if (a.softcap > 0) scores = at::tanh(scores / a.softcap) * a.softcap;
  scores = scores.view({B, Hkv, R, T, S});
  scores = scores.masked_fill(allowed.unsqueeze(2).logical_not(), fill_for(scores, a.min_value));
  auto probs = at::softmax(scores, -1, soft_type(q)).to(q.scalar_type()).view({B, Hkv, R * T, S});
  return at::matmul(probs, v).view({B, Hq, T, D});
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t chunk_rows(const AttentionArgs& a, int64_t B, int64_t Hq, int64_t T, int64_t S) {
  if (a.chunk > 0) return std::min(a.chunk, T);
  // fp32 scores per block: 64 MB. Fewer, larger GEMMs: with OpenBLAS threads
  // on busy cores each call's synchronisation costs more than its size says.
  const int64_t budget = int64_t{1} << 24;
  return std::clamp<int64_t>(budget / std::max<int64_t>(1, B * Hq * S), 1, T);
}

// Scores of query rows [a, a+n): raw (after scale and soft-cap) and masked.
// Returns s [B,Hkv,R,n,S] in q's dtype, and the tanh of the soft-cap in *t.
at::Tensor chunk_scores(const at::Tensor& q5, const at::Tensor& k, const at::Tensor& allowed, const AttentionArgs& a,
                        int64_t start, int64_t n, at::Tensor* t, at::Tensor* mask) {
  const int64_t B = q5.size(0), Hkv = q5.size(1), R = q5.size(2), D = q5.size(4), S = k.size(2);
  auto qc = q5.narrow(3, start, n).reshape({B, Hkv, R * n, D});
  auto s = at::matmul(qc, k.transpose(-1, -2)) * a.scale;  // [B,Hkv,R*n,S]
  if (a.softcap > 0) {
    *t = at::tanh(s / a.softcap);
    s = *t * a.softcap;
    *t = t->view({B, Hkv, R, n, S});
  }
  *mask = allowed.narrow(2, start, n).unsqueeze(2).logical_not();  // [B,1,1,n,S] true = masked
  return s.view({B, Hkv, R, n, S}).masked_fill(*mask, fill_for(s, a.min_value));
}

struct ChunkedAttention : public torch::autograd::Function<ChunkedAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& allowed, double scale, double softcap, double min_value, int64_t chunk) {
    at::NoGradGuard ng;
    const int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t Hkv = k.size(1), S = k.size(2), R = Hq / Hkv;
    const AttentionArgs a{scale, softcap, min_value, chunk};
    auto q5 = q.reshape({B, Hkv, R, T, D});
    auto out = at::empty({B, Hq, T, D}, q.options());
    auto out5 = out.view({B, Hkv, R, T, D});
    const auto st = soft_type(q);
    for (int64_t s0 = 0; s0 < T; s0 += chunk) {
      const int64_t n = std::min(chunk, T - s0);
      at::Tensor t, mask;
      auto p = at::softmax(chunk_scores(q5, k, allowed, a, s0, n, &t, &mask), -1, st).to(q.scalar_type());
      out5.narrow(3, s0, n).copy_(at::matmul(p.view({B, Hkv, R * n, S}), v).view({B, Hkv, R, n, D}));
    }
    ctx->save_for_backward({q, k, v, allowed});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["softcap"] = softcap;
    ctx->saved_data["min_value"] = min_value;
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  // Per chunk: p = softmax(s) recomputed (the fused kernel, as the forward),
  // dV += p^T dO, dp = dO V^T, ds = softmax's backward p * (dp - rowsum(dp * p)),
  // zero where masked (masked_fill's backward), times 1 - tanh^2 through the
  // soft-cap; dQ = scale ds K, dK += scale ds^T Q.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto sv = ctx->get_saved_variables();
    const auto &q = sv[0], &k_saved = sv[1], &v_saved = sv[2], &allowed = sv[3];
    const AttentionArgs a{ctx->saved_data["scale"].toDouble(), ctx->saved_data["softcap"].toDouble(),
                          ctx->saved_data["min_value"].toDouble(), ctx->saved_data["chunk"].toInt()};
    const int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t Hkv = k_saved.size(1), S = k_saved.size(2), R = Hq / Hkv;
    const auto dt = q.scalar_type(), st = soft_type(q);
    // Under autocast q, k and v may differ in dtype (RoPE promotes q and k to
    // fp32, v stays bf16): backward computes in q's dtype.
    const auto k = k_saved.to(dt), v = v_saved.to(dt);
    auto q5 = q.reshape({B, Hkv, R, T, D});
    auto g5 = grad_outputs[0].reshape({B, Hkv, R, T, D}).to(dt);
    auto dq = at::empty({B, Hkv, R, T, D}, q.options());
    auto dk = at::zeros({B, Hkv, S, D}, q.options());
    auto dv = at::zeros({B, Hkv, S, D}, q.options());
    for (int64_t s0 = 0; s0 < T; s0 += a.chunk) {
      const int64_t n = std::min(a.chunk, T - s0);
      at::Tensor t, mask;
      auto p = at::softmax(chunk_scores(q5, k, allowed, a, s0, n, &t, &mask), -1, st);  // [B,Hkv,R,n,S]
      auto gc = g5.narrow(3, s0, n).reshape({B, Hkv, R * n, D});
      dv.add_(at::matmul(p.to(dt).view({B, Hkv, R * n, S}).transpose(-1, -2), gc));
      auto dp = at::matmul(gc, v.transpose(-1, -2)).view({B, Hkv, R, n, S}).to(st);
      auto ds = at::_softmax_backward_data(dp, p, -1, st);
      ds.masked_fill_(mask, 0.0);
      if (a.softcap > 0) ds.mul_(1.0 - t.to(st).square());
      auto dsm = ds.to(dt).view({B, Hkv, R * n, S});
      dq.narrow(3, s0, n).copy_(at::matmul(dsm, k).mul_(a.scale).view({B, Hkv, R, n, D}));
      auto qc = q5.narrow(3, s0, n).reshape({B, Hkv, R * n, D});
      dk.add_(at::matmul(dsm.transpose(-1, -2), qc), a.scale);
    }
    return {dq.view({B, Hq, T, D}), dk.to(k_saved.scalar_type()), dv.to(v_saved.scalar_type()), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
at::Tensor attention_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                          const AttentionArgs& a) {
  const int64_t R = q.size(1) / k.size(1);
  auto kr = R > 1 ? k.repeat_interleave(R, 1) : k;
  auto vr = R > 1 ? v.repeat_interleave(R, 1) : v;
  // An additive mask with the eager path's fill: fully masked (padding) rows
  // stay finite (uniform), where a boolean mask would give NaN.
  auto bias = at::zeros(allowed.sizes(), q.options()).masked_fill(allowed.logical_not(), a.min_value);
  return at::scaled_dot_product_attention(q, kr, vr, bias, 0.0, false, a.scale);
}
#endif

}  // namespace

at::Tensor attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                             const AttentionArgs& a) {
  PREFOPT_ASSERT(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && allowed.dim() == 4 && q.size(1) % k.size(1) == 0,
                 "attention: q [B,Hq,T,D], k/v [B,Hkv,S,D], allowed [B,1,T,S] expected");
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  if (a.softcap <= 0) return attention_sdpa(q, k, v, allowed, a);
#endif
  const int64_t chunk = chunk_rows(a, q.size(0), q.size(1), q.size(2), k.size(2));
  return ChunkedAttention::apply(q, k, v, allowed.to(at::kBool), a.scale, a.softcap, a.min_value, chunk);
}

}  // namespace prefopt
