// Sampler: one prompt prefill per prompt, broadcast to n rows; a decode loop
// that drops finished rows. Matches HF `generate(do_sample=True)` warpers
// (temperature -> top-k -> top-p) and vLLM's stop-string semantics.
//
// Shapes: P prompts, n samples per prompt, R = P*n rows, A active rows,
//         T prompt length (left-padded to the longest), S keys, V vocab, H hidden.
#include "generate/sampler.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace prefopt {

std::vector<double> filtered_distribution(const std::vector<float>& logits, double temperature, int top_k,
                                          double top_p) {
  PREFOPT_CHECK(temperature > 0, "filtered_distribution: temperature must be > 0 (0 means greedy), got {}",
                temperature);
  PREFOPT_CHECK(top_p > 0 && top_p <= 1, "filtered_distribution: top_p must be in (0, 1], got {}", top_p);
  const size_t V = logits.size();
  PREFOPT_CHECK(V > 0, "filtered_distribution: empty logits");
  std::vector<double> z(V);
  for (size_t i = 0; i < V; ++i) z[i] = logits[i] / temperature;
  std::vector<bool> keep(V, true);
  if (top_k > 0 && static_cast<size_t>(top_k) < V) {
    // TopKLogitsWarper: remove logits below the k-th largest (ties with it kept).
    std::vector<double> tmp(z);
    std::nth_element(tmp.begin(), tmp.begin() + (top_k - 1), tmp.end(), std::greater<double>());
    const double kth = tmp[top_k - 1];
    for (size_t i = 0; i < V; ++i) keep[i] = z[i] >= kth;
  }
  double mx = -INFINITY;
  for (size_t i = 0; i < V; ++i)
    if (keep[i]) mx = std::max(mx, z[i]);
  std::vector<double> p(V, 0.0);
  double s = 0;
  for (size_t i = 0; i < V; ++i)
    if (keep[i]) s += (p[i] = std::exp(z[i] - mx));
  for (auto& x : p) x /= s;
  if (top_p < 1.0) {
    // TopPLogitsWarper: sort ascending, drop tokens while the cumulative
    // probability is <= 1 - top_p; the most likely token is always kept.
    std::vector<size_t> asc;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) asc.push_back(i);
    std::stable_sort(asc.begin(), asc.end(), [&](size_t a, size_t b) { return z[a] < z[b]; });
    double cum = 0;
    for (size_t j = 0; j + 1 < asc.size(); ++j) {
      cum += p[asc[j]];
      if (cum <= 1.0 - top_p) p[asc[j]] = 0;
    }
    s = 0;
    for (double x : p) s += x;
    for (auto& x : p) x /= s;
  }
  return p;
}

int64_t draw_index(const std::vector<double>& p, double u) {
  double c = 0;
  int64_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    c += p[i];
    last = static_cast<int64_t>(i);
    if (u < c) return last;
  }
  PREFOPT_CHECK(last >= 0, "draw_index: the distribution has no positive entry");
  return last;  // u beyond the rounded total: the last supported index
}

std::pair<std::vector<int64_t>, std::vector<double>> pick_tokens(const at::Tensor& logits, double temperature, int top_k,
                                                                 double top_p, const std::vector<double>& u) {
  const int64_t A = logits.size(0), V = logits.size(1);
  const auto lf = logits.to(at::kFloat);
  const auto zd = lf.to(at::kDouble);
  at::Tensor ids;
  if (temperature <= 0) {
    ids = lf.argmax(-1);  // the first index of the maximum
  } else {
    PREFOPT_CHECK(static_cast<int64_t>(u.size()) == A, "pick_tokens: {} uniforms for {} rows", u.size(), A);
    auto z = zd / temperature;
    if (top_k > 0 && top_k < V) {
      auto kth = std::get<0>(z.topk(top_k, -1)).narrow(-1, top_k - 1, 1);  // ties with the k-th kept
      z = z.masked_fill(z < kth, -INFINITY);
    }
    auto p = at::softmax(z, -1);  // 0 where filtered
    if (top_p < 1.0) {
      // ascending by z, stable (filtered -inf entries first, with p = 0)
      auto idx = std::get<1>(at::sort(z, /*stable=*/true, -1, /*descending=*/false));
      auto ps = p.gather(-1, idx);
      auto drop = ps.cumsum(-1) <= (1.0 - top_p);
      drop.select(-1, V - 1).fill_(false);  // the most likely token stays
      p = at::zeros_like(p).scatter(-1, idx, ps.masked_fill(drop, 0.0));
      p = p / p.sum(-1, true);
    }
    auto pos = p > 0;
    auto ut = at::tensor(u, at::kDouble).to(p.device()).unsqueeze(1);
    auto hit = (ut < p.cumsum(-1)) & pos;
    auto first = hit.to(at::kByte).argmax(-1);  // the first index whose cumulative sum passes u
    auto ar = at::arange(V, p.options().dtype(at::kLong)).unsqueeze(0);
    auto last = (ar * pos.to(at::kLong)).amax(-1);  // u past the rounded total: the last supported index
    ids = at::where(hit.any(-1), first, last);
  }
  auto lp = at::log_softmax(zd, -1).gather(1, ids.unsqueeze(1)).squeeze(1);
  auto ih = ids.to(at::kLong).cpu().contiguous(), lh = lp.cpu().contiguous();  // A ids and A log-probs only
  return {std::vector<int64_t>(ih.data_ptr<int64_t>(), ih.data_ptr<int64_t>() + A),
          std::vector<double>(lh.data_ptr<double>(), lh.data_ptr<double>() + A)};
}

static uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t sample_stream_seed(uint64_t seed, uint64_t stream_id, uint64_t sample_index) {
  return mix64(mix64(mix64(seed) ^ stream_id) ^ sample_index);
}

namespace {

// Per-row decode state.
struct Row {
  Rng rng;
  Sample* out;
  bool done = false;
};

// Earliest cut position over stop strings and the stop rule (npos = none).
size_t find_stop(const std::string& text, const SamplingParams& sp) {
  size_t cut = std::string::npos;
  for (const auto& s : sp.stop_strings) {
    if (s.empty()) continue;
    size_t at = text.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (sp.stop_fn) cut = std::min(cut, sp.stop_fn(text));
  return cut;
}

std::string decode_ids(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special_tokens=*/true);
}

}  // namespace

std::vector<std::vector<Sample>> sample(const CausalLM& model, const Tokenizer* tok,
                                        const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& sp) {
  at::NoGradGuard ng;
  const int64_t P = static_cast<int64_t>(prompts.size());
  PREFOPT_CHECK(sp.n >= 1, "sample: n must be >= 1, got {}", sp.n);
  const int64_t n = sp.n;
  const bool want_stop = !sp.stop_strings.empty() || static_cast<bool>(sp.stop_fn);
  if (want_stop && !tok)
    fail("sample", "stop strings need a tokenizer to decode the new tokens",
         "pass a Tokenizer (prefopt generate loads it from the model directory or --tokenizer)");
  PREFOPT_CHECK(sp.stream_ids.empty() || static_cast<int64_t>(sp.stream_ids.size()) == P,
                "sample: stream_ids has {} entries for {} prompts", sp.stream_ids.size(), P);
  std::vector<std::vector<Sample>> out(P, std::vector<Sample>(n));
  if (P == 0) return out;
  if (sp.max_new_tokens <= 0) {
    for (auto& ps : out)
      for (auto& s : ps) s.finish_reason = "length";
    return out;
  }
  const int64_t V = model.config().vocab_size;
  size_t Tmax = 0;
  for (int64_t b = 0; b < P; ++b) {
    PREFOPT_CHECK(!prompts[b].empty(), "sample: prompt {} is empty (at least one token, e.g. BOS, is needed)", b);
    for (int64_t id : prompts[b])
      PREFOPT_CHECK(id >= 0 && id < V, "sample: prompt {} holds token id {} outside the vocabulary [0, {})", b, id,
                    V);
    Tmax = std::max(Tmax, prompts[b].size());
  }
  // Left padding: [P,T] ids and mask.
  auto ids = at::zeros({P, static_cast<int64_t>(Tmax)}, at::kLong), mask = at::zeros_like(ids);
  {
    auto ia = ids.accessor<int64_t, 2>(), ma = mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < P; ++b) {
      const int64_t off = static_cast<int64_t>(Tmax - prompts[b].size());
      for (size_t t = 0; t < prompts[b].size(); ++t) ia[b][off + t] = prompts[b][t], ma[b][off + t] = 1;
    }
  }
  const auto dev = model.device();
  ids = ids.to(dev), mask = mask.to(dev);
  KVCache cache;
  at::Tensor pos, last;  // pos [R,T], last hidden [R,H]
  // Row r = prompt r / n, sample r % n.
  if (sp.share_prefill) {
    pos = position_ids_from_mask(mask);
    auto h = model.forward_hidden(ids, pos, mask, &cache);  // [P,T,H]: one prefill per prompt
    cache.expand_batch(n);                                   // broadcast to P*n rows
    last = h.select(1, h.size(1) - 1).repeat_interleave(n, 0);
    mask = mask.repeat_interleave(n, 0);
    pos = pos.repeat_interleave(n, 0);
  } else {
    ids = ids.repeat_interleave(n, 0), mask = mask.repeat_interleave(n, 0);
    pos = position_ids_from_mask(mask);
    auto h = model.forward_hidden(ids, pos, mask, &cache);  // [R,T,H]: R prefills
    last = h.select(1, h.size(1) - 1);
  }
  at::Tensor next_pos = pos.select(1, pos.size(1) - 1).unsqueeze(1) + 1;  // [R,1]
  const int64_t R = P * n;
  std::vector<Row> rows;
  rows.reserve(R);
  for (int64_t r = 0; r < R; ++r) {
    const uint64_t stream = sp.stream_ids.empty() ? static_cast<uint64_t>(r / n) : sp.stream_ids[r / n];
    rows.push_back(Row{Rng(sample_stream_seed(sp.seed, stream, static_cast<uint64_t>(r % n))), &out[r / n][r % n]});
  }
  std::vector<int64_t> active(R);  // cache row a holds global row active[a]
  std::iota(active.begin(), active.end(), 0);

  for (int step = 0; step < sp.max_new_tokens; ++step) {
    const int64_t A = static_cast<int64_t>(active.size());
    at::Tensor logits = model.logits(last);  // [A,V] on the model's device
    const bool pick_on_device = sp.on_device || dev.type() != at::kCPU;
    std::vector<int64_t> picked;
    std::vector<double> picked_lp;
    const float* base = nullptr;
    if (pick_on_device) {
      std::vector<double> u(static_cast<size_t>(A), 0.0);
      if (sp.temperature > 0)
        for (int64_t a = 0; a < A; ++a) u[a] = rows[active[a]].rng.uniform();
      std::tie(picked, picked_lp) = pick_tokens(logits, sp.temperature, sp.top_k, sp.top_p, u);
    } else {
      logits = logits.to(at::kFloat).contiguous();  // CPU already: no copy
      base = logits.data_ptr<float>();
    }
    std::vector<int64_t> next(A, 0);
    std::vector<int64_t> keep;  // cache rows still running after this step
    for (int64_t a = 0; a < A; ++a) {
      Row& row = rows[active[a]];
      int64_t tok_id;
      const float* lr = pick_on_device ? nullptr : base + a * V;
      if (pick_on_device) {
        tok_id = picked[a];
        row.out->logprob_sum += picked_lp[a];
      } else if (sp.temperature <= 0) {
        tok_id = std::max_element(lr, lr + V) - lr;  // first index of the maximum, as argmax
      } else {
        auto p = filtered_distribution(std::vector<float>(lr, lr + V), sp.temperature, sp.top_k, sp.top_p);
        tok_id = draw_index(p, row.rng.uniform());
      }
      if (!pick_on_device) {  // log p_model(token): raw log-softmax.
        const float mx = *std::max_element(lr, lr + V);
        double se = 0;
        for (int64_t i = 0; i < V; ++i) se += std::exp(static_cast<double>(lr[i]) - mx);
        row.out->logprob_sum += static_cast<double>(lr[tok_id]) - mx - std::log(se);
      }
      row.out->ids.push_back(tok_id);
      next[a] = tok_id;
      if (std::find(sp.eos_ids.begin(), sp.eos_ids.end(), tok_id) != sp.eos_ids.end()) {
        row.out->finish_reason = "eos", row.done = true;
      } else if (want_stop) {
        std::string text = decode_ids(*tok, row.out->ids);
        size_t cut = find_stop(text, sp);
        if (cut != std::string::npos) {
          row.out->text = text.substr(0, cut);
          row.out->finish_reason = "stop", row.done = true;
        }
      }
      if (!row.done && step + 1 == sp.max_new_tokens) row.out->finish_reason = "length", row.done = true;
      if (!row.done) keep.push_back(a);
    }
    if (keep.empty()) break;
    // Drop finished rows from the cache and the per-row tensors.
    auto nxt = at::tensor(next, at::kLong).view({A, 1});
    if (static_cast<int64_t>(keep.size()) < A) {
      auto idx = at::tensor(keep, at::kLong);
      cache.select_batch(idx);
      auto didx = idx.to(dev);
      mask = mask.index_select(0, didx);
      next_pos = next_pos.index_select(0, didx);
      nxt = nxt.index_select(0, idx);
      std::vector<int64_t> still;
      for (int64_t a : keep) still.push_back(active[a]);
      active.swap(still);
    }
    const int64_t A2 = static_cast<int64_t>(active.size());
    mask = at::cat({mask, at::ones({A2, 1}, mask.options())}, 1);
    auto h1 = model.forward_hidden(nxt.to(dev), next_pos, mask, &cache);  // [A,1,H]
    last = h1.select(1, 0);
    next_pos = next_pos + 1;
  }
  if (tok)
    for (auto& row : rows)
      if (row.out->finish_reason != "stop") row.out->text = decode_ids(*tok, row.out->ids);
  return out;
}

std::vector<int64_t> model_eos_ids(const std::string& model_dir, const CausalLM& m, const Tokenizer* tok) {
  std::vector<int64_t> eos = m.config().eos_token_ids;
  const std::string gc = model_dir + "/generation_config.json";
  if (std::filesystem::exists(gc)) {
    auto j = nlohmann::json::parse(read_file(gc), nullptr, false);
    if (!j.is_discarded() && j.contains("eos_token_id")) {
      const auto& e = j["eos_token_id"];
      if (e.is_number_integer()) eos.push_back(e.get<int64_t>());
      if (e.is_array())
        for (auto& x : e)
          if (x.is_number_integer()) eos.push_back(x.get<int64_t>());
    }
  }
  if (tok)
    if (auto e = tok->eos_id()) eos.push_back(*e);
  std::sort(eos.begin(), eos.end());
  eos.erase(std::unique(eos.begin(), eos.end()), eos.end());
  return eos;
}

}  // namespace prefopt
