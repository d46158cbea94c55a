#include "generate/sampler.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "model/model.h"

namespace prefopt {

std::vector<double> filtered_distribution(const std::vector<float>& logits, double temperature, int top_k,
                                          double top_p) {
  PREFOPT_CHECK(temperature > 0, "filtered_distribution: temperature must be > 0 (0 means greedy)");
  const size_t V = logits.size();
  std::vector<double> z(V);
  for (size_t i = 0; i < V; ++i) z[i] = logits[i] / temperature;
  std::vector<size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return z[a] > z[b]; });
  std::vector<bool> keep(V, true);
  if (top_k > 0 && static_cast<size_t>(top_k) < V) {
    // HF TopKLogitsWarper: remove logits below the k-th largest (ties kept)
    double kth = z[order[top_k - 1]];
    for (size_t i = 0; i < V; ++i) keep[i] = z[i] >= kth;
  }
  const double mx = z[order[0]];
  std::vector<double> p(V, 0.0);
  double s = 0;
  for (size_t i = 0; i < V; ++i)
    if (keep[i]) s += (p[i] = std::exp(z[i] - mx));
  for (auto& x : p) x /= s;
  if (top_p < 1.0) {
    // HF TopPLogitsWarper: sort ascending, drop tokens whose cumulative
    // probability is <= 1 - top_p (the most likely token is always kept).
    std::vector<size_t> asc(order.rbegin(), order.rend());
    double cum = 0;
    for (size_t j = 0; j + 1 < asc.size(); ++j) {
      cum += p[asc[j]];
      if (cum <= 1.0 - top_p) keep[asc[j]] = false;
    }
    s = 0;
    for (size_t i = 0; i < V; ++i) {
      if (!keep[i]) p[i] = 0;
      s += p[i];
    }
    for (auto& x : p) x /= s;
  }
  return p;
}

static int64_t draw(const std::vector<double>& p, Rng& rng) {
  double u = rng.uniform(), c = 0;
  int64_t last = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    c += p[i];
    last = static_cast<int64_t>(i);
    if (u < c) return last;
  }
  return last;
}

std::vector<std::vector<Sample>> sample(const CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                        const SamplingParams& sp) {
  at::NoGradGuard ng;
  const int64_t P = static_cast<int64_t>(prompts.size()), n = std::max(1, sp.n);
  std::vector<std::vector<Sample>> out(P, std::vector<Sample>(n));
  if (P == 0 || sp.max_new_tokens <= 0) return out;
  size_t Tmax = 0;
  for (auto& p : prompts) {
    PREFOPT_CHECK(!p.empty(), "sample: empty prompt");
    Tmax = std::max(Tmax, p.size());
  }
  auto ids = at::zeros({P, static_cast<int64_t>(Tmax)}, at::kLong), mask = at::zeros_like(ids);
  for (int64_t b = 0; b < P; ++b) {
    int64_t off = static_cast<int64_t>(Tmax - prompts[b].size());
    for (size_t t = 0; t < prompts[b].size(); ++t) ids[b][off + t] = prompts[b][t], mask[b][off + t] = 1;
  }
  const auto dev = model.device();
  ids = ids.to(dev), mask = mask.to(dev);
  KVCache cache;
  at::Tensor pos, last;
  // Row r = prompt r / n, sample r % n.
  if (sp.share_prefill) {
    pos = position_ids_from_mask(mask);
    auto h = model.forward_hidden(ids, pos, mask, &cache);  // one prefill per prompt
    cache.expand_batch(n);                                   // broadcast to P*n rows
    last = h.select(1, h.size(1) - 1).repeat_interleave(n, 0);
    mask = mask.repeat_interleave(n, 0);
    pos = pos.repeat_interleave(n, 0);
  } else {
    ids = ids.repeat_interleave(n, 0), mask = mask.repeat_interleave(n, 0);
    pos = position_ids_from_mask(mask);
    auto h = model.forward_hidden(ids, pos, mask, &cache);  // P*n prefills
    last = h.select(1, h.size(1) - 1);
  }
  auto next_pos = pos.select(1, pos.size(1) - 1).unsqueeze(1) + 1;
  const int64_t R = P * n;
  std::vector<Rng> rngs;
  for (int64_t r = 0; r < R; ++r) rngs.emplace_back(sp.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(r / n) * 1000003ULL + r % n);
  std::vector<bool> done(R, false);
  for (int step = 0; step < sp.max_new_tokens; ++step) {
    auto logits = model.logits(last).to(at::kFloat).cpu().contiguous();  // [R,V]
    const int64_t V = logits.size(1);
    std::vector<int64_t> next(R, 0);
    bool all = true;
    for (int64_t r = 0; r < R; ++r) {
      if (done[r]) continue;
      const float* lr = logits.data_ptr<float>() + r * V;
      int64_t tok;
      if (sp.temperature <= 0) {
        tok = std::max_element(lr, lr + V) - lr;
      } else {
        tok = draw(filtered_distribution(std::vector<float>(lr, lr + V), sp.temperature, sp.top_k, sp.top_p), rngs[r]);
      }
      next[r] = tok;
      auto& s = out[r / n][r % n];
      s.ids.push_back(tok);
      if (std::find(sp.eos_ids.begin(), sp.eos_ids.end(), tok) != sp.eos_ids.end()) s.hit_eos = true, done[r] = true;
      all = all && done[r];
    }
    if (all || step + 1 == sp.max_new_tokens) break;
    mask = at::cat({mask, at::ones({R, 1}, mask.options())}, 1);
    auto h1 = model.forward_hidden(at::tensor(next, at::kLong).view({R, 1}).to(dev), next_pos, mask, &cache);
    last = h1.select(1, 0);
    next_pos = next_pos + 1;
  }
  return out;
}

}  // namespace prefopt
