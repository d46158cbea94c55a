// prefopt loss: the one core computation — per-token log-probabilities of
// labels under a mask, in fp32, from final hidden states and the lm_head
// weight, WITHOUT materialising the [B,T,V] log-softmax: rows are processed in
// chunks and the backward recomputes each chunk's logits (memory O(chunk·V)).
//
// Shapes: N rows (tokens), H hidden, V vocab, B batch, T time.
#pragma once
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace prefopt {

// log softmax(cap(hidden @ weight^T))[label] for each row. hidden [N,H],
// weight [V,H], labels [N] int64 -> [N] fp32 (fp64 when hidden is fp64, for
// finite-difference checks; bf16/fp16 are upcast). Differentiable w.r.t. hidden and
// weight. softcap > 0 applies Gemma2's cap·tanh(z/cap) to the logits.
at::Tensor token_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                       double softcap = 0.0, int64_t chunk_rows = 1024);

// The plain path (full log_softmax over [N,V]); the test oracle.
at::Tensor token_logps_reference(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                 double softcap = 0.0);

struct SeqLogps {
  at::Tensor sum;        // [B] summed log-probs of the counted tokens (differentiable)
  at::Tensor count;      // [B] number of counted tokens (float)
  at::Tensor logit_sum;  // [B] detached: Σ over counted tokens of the mean logit over V
};

// hidden [B,T,H]; labels [B,T] (the token each position predicts, already
// shifted by the caller); loss_mask [B,T] (1 = this position counts). Only the
// masked rows reach the head: no compute on prompt, tool or padding rows.
SeqLogps sequence_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                        const at::Tensor& loss_mask, double softcap = 0.0, int64_t chunk_rows = 1024);

// Scattered rows grouped into segments, for packed layouts such as
// [prompt | chosen | rejected], where the last prompt position predicts the
// first token of BOTH completions (so one label per position cannot work).
// hidden_flat [R,H]; src [N] rows of hidden_flat; labels [N]; seg [N] in
// [0, num_segments). Returns sums/counts/logit sums of size [num_segments].
// full_vocab = true computes logits and log_softmax for EVERY row of
// hidden_flat at once ([R,V], as TRL's concatenated forward does) and then
// gathers: the baseline that bench_train measures against, not for training.
SeqLogps segment_logps(const at::Tensor& hidden_flat, const at::Tensor& weight, const at::Tensor& src,
                       const at::Tensor& labels, const at::Tensor& seg, int64_t num_segments, double softcap = 0.0,
                       int64_t chunk_rows = 1024, bool full_vocab = false);

}  // namespace prefopt
