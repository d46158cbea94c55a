#include "loss/logps.h"

#include <ATen/ATen.h>

#include <cmath>
#include <torch/csrc/autograd/custom_function.h>

#include "core/error.h"

namespace prefopt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Memory bound: forward and backward hold at most one [chunk_rows, V] fp32
// logits block (plus its softmax in backward) at a time; nothing of size
// [N, V] is ever allocated or saved: backward recomputes each chunk's logits
// from the saved hidden rows and weight.

// Compute type: fp32 (bf16/fp16 inputs are upcast), or fp64 when the hidden
// states are fp64 (finite-difference tests).
at::ScalarType ctype(const at::Tensor& h) { return h.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// z = cap(h @ W^T) in the compute type for one chunk.
at::Tensor chunk_logits(const at::Tensor& h, const at::Tensor& w, double cap) {
  auto z = at::matmul(h.to(ctype(h)), w.to(ctype(h)).t());
  if (cap > 0) z = at::tanh(z / cap) * cap;
  return z;
}

struct ChunkedLogps : public torch::autograd::Function<ChunkedLogps> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& labels, double cap, int64_t chunk, at::Tensor logit_mean_out) {
    at::NoGradGuard ng;
    const int64_t N = hidden.size(0);
    auto out = at::empty({N}, hidden.options().dtype(ctype(hidden)));
    auto lse_all = at::empty({N}, hidden.options().dtype(ctype(hidden)));  // saved: backward skips the reductions
    for (int64_t a = 0; a < N; a += chunk) {
      int64_t n = std::min(chunk, N - a);
      auto z = chunk_logits(hidden.narrow(0, a, n), weight, cap);  // [n,V]
      auto lse = at::logsumexp(z, -1);
      lse_all.narrow(0, a, n).copy_(lse);
      out.narrow(0, a, n).copy_(z.gather(1, labels.narrow(0, a, n).unsqueeze(1)).squeeze(1) - lse);
      if (logit_mean_out.numel() > 0) logit_mean_out.narrow(0, a, n).copy_(z.mean(-1));
    }
    ctx->save_for_backward({hidden, weight, labels, lse_all});
    ctx->saved_data["cap"] = cap;
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  // d logp[label] / dz = onehot(label) - softmax(z); through the cap:
  // dz/dz_raw = 1 - tanh^2 = 1 - (z/cap)^2.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];
    const auto& weight = saved[1];
    const auto& labels = saved[2];
    const auto& lse_all = saved[3];
    const double cap = ctx->saved_data["cap"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto ct = ctype(hidden);
    auto g = grad_outputs[0].to(ct);  // [N]
    const int64_t N = hidden.size(0);
    const bool need_h = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    auto wf = weight.to(ct);
    at::Tensor gh = need_h ? at::empty(hidden.sizes(), hidden.options().dtype(ct)) : at::Tensor();
    at::Tensor gw = need_w ? at::zeros(weight.sizes(), weight.options().dtype(ct)) : at::Tensor();
    for (int64_t a = 0; a < N; a += chunk) {
      int64_t n = std::min(chunk, N - a);
      auto hc = hidden.narrow(0, a, n).to(ct);
      auto z = chunk_logits(hc, wf, cap);
      auto gc = g.narrow(0, a, n).unsqueeze(1);  // [n,1]
      // softmax = exp(z - lse), in place on z. Entries with z - lse < -69
      // (p < 1e-30, nothing measurable) become exactly 0 instead of subnormal:
      // CPU-FACTS, a subnormal sgemm operand is 10-200x slower and OpenBLAS's
      // threads do not flush them.
      at::Tensor cap_factor;
      if (cap > 0) cap_factor = 1.0 - (z / cap).square();  // d cap·tanh(r/cap) / dr = 1 - tanh^2
      z.sub_(lse_all.narrow(0, a, n).unsqueeze(1));
      auto dz = at::threshold_(z, -69.0, -INFINITY).exp_();
      dz.mul_(gc).neg_();  // -softmax·g
      dz.scatter_add_(1, labels.narrow(0, a, n).unsqueeze(1), gc);  // + onehot·g
      if (cap > 0) dz.mul_(cap_factor);
      if (need_h) gh.narrow(0, a, n).copy_(at::matmul(dz, wf));
      if (need_w) gw.addmm_(dz.t(), hc);
    }
    return {need_h ? gh.to(hidden.scalar_type()) : at::Tensor(), need_w ? gw.to(weight.scalar_type()) : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor token_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels, double softcap,
                       int64_t chunk_rows) {
  PREFOPT_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
                "token_logps: hidden [N,H] and weight [V,H] expected");
  PREFOPT_CHECK(labels.dim() == 1 && labels.size(0) == hidden.size(0), "token_logps: labels must be [N]");
  return ChunkedLogps::apply(hidden, weight, labels.to(at::kLong), softcap, std::max<int64_t>(1, chunk_rows),
                             at::empty({0}, hidden.options()));  // no logit means wanted
}

at::Tensor token_logps_reference(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                                 double softcap) {
  auto z = at::matmul(hidden.to(ctype(hidden)), weight.to(ctype(hidden)).t());
  if (softcap > 0) z = at::tanh(z / softcap) * softcap;
  return at::log_softmax(z, -1).gather(1, labels.to(at::kLong).unsqueeze(1)).squeeze(1);
}

SeqLogps sequence_logps(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                        const at::Tensor& loss_mask, double softcap, int64_t chunk_rows) {
  PREFOPT_CHECK(hidden.dim() == 3, "sequence_logps: hidden must be [B,T,H]");
  const int64_t B = hidden.size(0), T = hidden.size(1), H = hidden.size(2);
  PREFOPT_CHECK(labels.sizes() == loss_mask.sizes() && labels.size(0) == B && labels.size(1) == T,
                "sequence_logps: labels and loss_mask must be [B,T] = [{},{}]", B, T);
  auto flat_mask = loss_mask.reshape({-1}).to(hidden.device()).to(at::kBool);
  auto idx = flat_mask.nonzero().squeeze(1);  // [N]
  auto h = hidden.reshape({B * T, H}).index_select(0, idx);
  auto lab = labels.reshape({-1}).to(hidden.device()).index_select(0, idx);
  auto row = at::div(idx, T, "floor");  // batch index of each counted token
  auto logit_mean = at::empty({idx.size(0)}, hidden.options().dtype(ctype(hidden)));
  auto lp = ChunkedLogps::apply(h, weight, lab.to(at::kLong), softcap, std::max<int64_t>(1, chunk_rows), logit_mean);
  auto zeros = at::zeros({B}, hidden.options().dtype(ctype(hidden)));
  SeqLogps out;
  out.sum = zeros.index_add(0, row, lp);
  out.count = loss_mask.to(hidden.device()).to(ctype(hidden)).sum(1);
  out.logit_sum = zeros.index_add(0, row, logit_mean).detach();
  return out;
}

SeqLogps segment_logps(const at::Tensor& hidden_flat, const at::Tensor& weight, const at::Tensor& src,
                       const at::Tensor& labels, const at::Tensor& seg, int64_t num_segments, double softcap,
                       int64_t chunk_rows, bool full_vocab) {
  PREFOPT_CHECK(hidden_flat.dim() == 2, "segment_logps: hidden must be [R,H]");
  PREFOPT_CHECK(src.dim() == 1 && labels.sizes() == src.sizes() && seg.sizes() == src.sizes(),
                "segment_logps: src, labels and seg must all be [N]");
  const auto dev = hidden_flat.device();
  auto s = src.to(dev).to(at::kLong), lab = labels.to(dev).to(at::kLong), sg = seg.to(dev).to(at::kLong);
  auto zeros = at::zeros({num_segments}, hidden_flat.options().dtype(ctype(hidden_flat)));
  SeqLogps out;
  at::Tensor lp, logit_mean;
  if (full_vocab) {
    auto z = at::matmul(hidden_flat.to(ctype(hidden_flat)), weight.to(ctype(hidden_flat)).t());  // [R,V]
    if (softcap > 0) z = at::tanh(z / softcap) * softcap;
    auto logp = at::log_softmax(z, -1);
    lp = logp.index_select(0, s).gather(1, lab.unsqueeze(1)).squeeze(1);
    logit_mean = z.detach().mean(-1).index_select(0, s);
  } else {
    auto h = hidden_flat.index_select(0, s);
    logit_mean = at::empty({s.size(0)}, hidden_flat.options().dtype(ctype(hidden_flat)));
    lp = ChunkedLogps::apply(h, weight, lab, softcap, std::max<int64_t>(1, chunk_rows), logit_mean);
  }
  out.sum = zeros.index_add(0, sg, lp);
  out.count = zeros.index_add(0, sg, at::ones_like(lp).detach());
  out.logit_sum = zeros.index_add(0, sg, logit_mean.detach()).detach();
  return out;
}

}  // namespace prefopt
