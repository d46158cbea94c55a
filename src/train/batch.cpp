#include "train/batch.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace prefopt {

PackedBatch pack_batch(const std::vector<BatchItem>& items, bool prefix_sharing) {
  PREFOPT_CHECK(!items.empty(), "pack_batch: empty batch");
  const int64_t B = static_cast<int64_t>(items.size());
  const int64_t K = static_cast<int64_t>(items[0].completions.size());
  for (auto& it : items) PREFOPT_CHECK(static_cast<int64_t>(it.completions.size()) == K, "pack_batch: ragged K");
  PackedBatch pb;
  pb.examples = B, pb.per_example = K;
  pb.rows = prefix_sharing ? B : B * K;
  // Row lengths.
  std::vector<int64_t> len(pb.rows);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t P = static_cast<int64_t>(items[b].prompt->size());
    if (prefix_sharing) {
      int64_t n = P;
      for (auto* c : items[b].completions) n += static_cast<int64_t>(c->ids.size());
      len[b] = n;
    } else {
      for (int64_t k = 0; k < K; ++k) len[b * K + k] = P + static_cast<int64_t>(items[b].completions[k]->ids.size());
    }
  }
  int64_t L = 1;
  for (auto n : len) L = std::max(L, n);
  pb.length = L;
  std::vector<int64_t> ids(pb.rows * L, 0), pos(pb.rows * L, 0), segpos(pb.rows * L, -2);  // -2 pad, -1 prompt, k
  std::vector<int64_t> src, lab, seg;
  for (int64_t b = 0; b < B; ++b) {
    const auto& prompt = *items[b].prompt;
    const int64_t P = static_cast<int64_t>(prompt.size());
    auto put_prompt = [&](int64_t r) {
      for (int64_t t = 0; t < P; ++t) ids[r * L + t] = prompt[t], pos[r * L + t] = t, segpos[r * L + t] = -1;
    };
    int64_t r = prefix_sharing ? b : b * K, start = P;
    put_prompt(r);
    for (int64_t k = 0; k < K; ++k) {
      if (!prefix_sharing) {
        r = b * K + k, start = P;
        if (k > 0) put_prompt(r);
      }
      const Completion& c = *items[b].completions[k];
      for (int64_t j = 0; j < static_cast<int64_t>(c.ids.size()); ++j) {
        const int64_t q = start + j;
        ids[r * L + q] = c.ids[j], pos[r * L + q] = P + j, segpos[r * L + q] = k;
        if (!c.mask[j]) continue;
        int64_t from = j == 0 ? P - 1 : q - 1;
        if (from < 0) continue;
        src.push_back(r * L + from), lab.push_back(c.ids[j]), seg.push_back(b * K + k);
      }
      start += static_cast<int64_t>(c.ids.size());
    }
  }
  for (auto n : len) pb.tokens += n;
  auto opt = at::TensorOptions().dtype(at::kLong);
  pb.ids = at::tensor(ids, opt).view({pb.rows, L});
  pb.position_ids = at::tensor(pos, opt).view({pb.rows, L});
  pb.src = at::tensor(src, opt);
  pb.labels = at::tensor(lab, opt);
  pb.seg = at::tensor(seg, opt);
  auto sp = at::tensor(segpos, opt).view({pb.rows, L});
  if (prefix_sharing) {
    // allowed[i,j] = j <= i and (seg[j] is prompt or seg[j] == seg[i]); pad rows see themselves only.
    auto si = sp.unsqueeze(2), sj = sp.unsqueeze(1);                  // [R,L,1], [R,1,L]
    auto causal = at::ones({L, L}, at::kBool).tril().unsqueeze(0);   // [1,L,L]
    auto same = sj.eq(-1).logical_or(sj.eq(si));
    auto pad = si.eq(-2).expand({pb.rows, L, L});
    auto eye = at::eye(L, at::kBool).unsqueeze(0).expand({pb.rows, L, L});
    auto allowed = causal.logical_and(same).logical_and(pad.logical_not()).logical_or(pad.logical_and(eye));
    pb.attn_mask = allowed.unsqueeze(1);
  } else {
    pb.attn_mask = sp.ne(-2).to(at::kLong);
  }
  return pb;
}

}  // namespace prefopt
