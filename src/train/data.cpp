#include "train/data.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace prefopt {

DataOptions data_options(const TrainConfig& c) {
  DataOptions o;
  o.max_length = c.max_length, o.max_prompt_length = c.max_prompt_length;
  o.max_completion_length = c.max_completion_length, o.truncation_mode = c.truncation_mode;
  o.mask_tool_observations = c.mask_tool_observations;
  return o;
}

Dataset split_eval(Dataset& train, double frac, int64_t seed) {
  if (!(frac > 0 && frac < 1))
    fail("eval_split", fmt::format("must be in (0, 1) to split, found {}", frac), "set eval_split in (0, 1) or eval_data");
  std::vector<size_t> order(train.rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Rng rng(static_cast<uint64_t>(seed) ^ 0x5eed5eedull);
  shuffle(order, rng);
  const size_t n_eval = std::max<size_t>(1, static_cast<size_t>(frac * order.size()));
  if (n_eval >= train.rows.size())
    fail(train.path, fmt::format("eval_split {} of {} rows leaves no training rows", frac, train.rows.size()),
         "lower eval_split, add rows, or pass eval_data");
  std::vector<bool> is_eval(order.size(), false);
  for (size_t i = 0; i < n_eval; ++i) is_eval[order[i]] = true;
  std::vector<Example> all = std::move(train.rows);
  train.rows.clear();
  Dataset ev = train;  // path, kind, counters and hash; no rows
  for (size_t i = 0; i < all.size(); ++i) (is_eval[i] ? ev.rows : train.rows).push_back(std::move(all[i]));
  ev.path = train.path + " (eval split)";
  return ev;
}

std::vector<size_t> epoch_order(size_t n, int64_t seed, int64_t epoch) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  Rng rng(static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch));
  shuffle(order, rng);
  return order;
}

std::vector<int64_t> kl_pairs(const Dataset& ds, int64_t batch_size) {
  std::vector<int64_t> p(ds.rows.size());
  const int64_t n = static_cast<int64_t>(ds.rows.size());
  for (int64_t c = 0; c < n; c += batch_size) {
    const int64_t sz = std::min(batch_size, n - c);
    for (int64_t j = 0; j < sz; ++j) p[c + j] = c + (j - 1 + sz) % sz;
  }
  return p;
}

Dataset synthetic_pairs(const SyntheticPairs& o, const std::string& name) {
  Rng rng(o.seed);
  Dataset ds;
  ds.path = "<" + name + " synthetic>";
  ds.kind = DataKind::Paired;
  ds.hash = name;
  const auto id = [&] { return static_cast<int32_t>(rng.below(static_cast<uint64_t>(o.vocab))); };
  for (int64_t i = 0; i < o.n; ++i) {
    Example ex;
    ex.line = static_cast<size_t>(i + 1);
    for (int64_t t = 0; t < o.prompt_len; ++t) ex.prompt.push_back(id());
    for (int k = 0; k < 2; ++k) {
      Completion c;
      const int64_t n = o.comp_min + static_cast<int64_t>(rng.below(static_cast<uint64_t>(o.comp_max - o.comp_min + 1)));
      for (int64_t t = 0; t < n; ++t) c.ids.push_back(id());
      c.mask.assign(c.ids.size(), 1);
      ex.completions.push_back(std::move(c));
    }
    ds.rows.push_back(std::move(ex));
  }
  return ds;
}

}  // namespace prefopt
