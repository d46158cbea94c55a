// prefopt model: scaled dot-product attention of one decoder layer.
//
//   eager    scores [B,Hkv,R*T,S] materialised, softmax, @ V; autograd keeps
//            the scores and probabilities of every layer for backward. The
//            plain path (transformers' eager attention) and the test oracle.
//   chunked  memory-lean: queries in chunks, a [chunk, S] block of scores at a
//            time; autograd keeps only q, k, v and the mask (nothing of size
//            [T, S]), and backward recomputes each chunk's scores and softmax
//            (FlashAttention's recomputation, Dao et al. 2022, in ATen ops;
//            the softmax and its backward are ATen's fused kernels). The same
//            numerics as eager, including fully masked (padding) query rows,
//            which attend uniformly as eager's min-value fill makes them.
// Both take the mask as a bool [B,1,T,S] (true = may attend), so causal,
// padding, sliding-window and block (prefix-sharing) masks are one argument;
// GQA folds the R = Hq/Hkv query heads of each kv head into the row axis (K/V
// are never repeated); Gemma2's logit soft-cap is applied to the scores
// before masking (tanh, differentiated in backward).
// On libtorch >= 2.1, chunked without a soft-cap calls
// at::scaled_dot_product_attention (an additive float mask, K/V repeated for
// GQA) instead; with a soft-cap no fused kernel applies and the chunked
// ATen path runs.
//
// Shapes: B batch, Hq query heads, Hkv kv heads, R = Hq / Hkv, T queries,
//         S keys, D head_dim.
#pragma once
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace prefopt {

enum class AttentionKind { Auto, Eager, Chunked };
// "auto" | "eager" | "chunked"; an Error naming `origin` otherwise.
AttentionKind parse_attention(const char* s, const char* origin);
const char* to_string(AttentionKind k);

struct AttentionArgs {
  double scale = 1.0;      // multiplies q k^T
  double softcap = 0.0;    // > 0: scores = softcap * tanh(scores / softcap) (Gemma2)
  double min_value = 0.0;  // the fill of masked scores (the dtype's lowest, as transformers)
  int64_t chunk = 0;       // query rows per chunk; 0 = about 64 MB of fp32 scores per block
};

// q [B,Hq,T,D], k and v [B,Hkv,S,D], allowed [B,1,T,S] bool -> [B,Hq,T,D].
at::Tensor attention_eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                           const AttentionArgs& a);
at::Tensor attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                             const AttentionArgs& a);

}  // namespace prefopt
