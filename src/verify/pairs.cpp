// Pair builders over graded samples (see pairs.h for the recipes and papers).
#include "verify/pairs.h"

#include "core/rng.h"

namespace prefopt {

namespace {

// Independent stream per prompt: pairs of prompt i do not depend on how many
// samples earlier prompts had.
Rng prompt_rng(uint64_t seed, size_t index) { return Rng(seed ^ (0x9E3779B97F4A7C15ULL * (index + 1))); }

}  // namespace

std::vector<PreferencePair> random_correct_incorrect_pairs(const std::vector<PromptSamples>& prompts, uint64_t seed,
                                                           int max_pairs) {
  std::vector<PreferencePair> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto& ps = prompts[p];
    std::vector<size_t> good, bad;
    for (size_t i = 0; i < ps.samples.size(); ++i) (ps.samples[i].correct ? good : bad).push_back(i);
    if (good.empty() || bad.empty()) continue;
    Rng rng = prompt_rng(seed, p);
    shuffle(good, rng);
    shuffle(bad, rng);
    const size_t n = std::min({good.size(), bad.size(), static_cast<size_t>(std::max(0, max_pairs))});
    for (size_t k = 0; k < n; ++k)
      out.push_back({ps.id, ps.prompt, ps.samples[good[k]].completion, ps.samples[bad[k]].completion});
  }
  return out;
}

namespace {

// Indices of the distinct correct and incorrect completions of a prompt (first occurrence kept).
void distinct_split(const PromptSamples& ps, std::vector<size_t>& good, std::vector<size_t>& bad) {
  for (size_t i = 0; i < ps.samples.size(); ++i) {
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = ps.samples[j].completion == ps.samples[i].completion;
    if (!seen) (ps.samples[i].correct ? good : bad).push_back(i);
  }
}

}  // namespace

std::vector<PreferencePair> correct_incorrect_combinations(const std::vector<PromptSamples>& prompts, uint64_t seed,
                                                           int max_pairs) {
  std::vector<PreferencePair> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto& ps = prompts[p];
    std::vector<size_t> good, bad;
    distinct_split(ps, good, bad);
    std::vector<std::pair<size_t, size_t>> combos;
    for (size_t g : good)
      for (size_t b : bad) combos.emplace_back(g, b);
    Rng rng = prompt_rng(seed, p);
    shuffle(combos, rng);
    if (max_pairs > 0 && combos.size() > static_cast<size_t>(max_pairs)) combos.resize(static_cast<size_t>(max_pairs));
    for (auto [g, b] : combos) out.push_back({ps.id, ps.prompt, ps.samples[g].completion, ps.samples[b].completion});
  }
  return out;
}

std::vector<UnpairedRow> distinct_correct_rows(const std::vector<PromptSamples>& prompts, uint64_t seed,
                                               int max_per_prompt) {
  std::vector<UnpairedRow> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<size_t> good, bad;
    distinct_split(prompts[p], good, bad);
    Rng rng = prompt_rng(seed, p);
    shuffle(good, rng);
    if (max_per_prompt > 0 && good.size() > static_cast<size_t>(max_per_prompt)) good.resize(static_cast<size_t>(max_per_prompt));
    for (size_t g : good) out.push_back({prompts[p].id, prompts[p].prompt, prompts[p].samples[g].completion, true});
  }
  return out;
}

std::vector<PreferencePair> best_worst_pairs(const std::vector<PromptSamples>& prompts, double min_margin) {
  std::vector<PreferencePair> out;
  for (const auto& ps : prompts) {
    if (ps.samples.size() < 2) continue;
    size_t best = 0, worst = 0;
    for (size_t i = 1; i < ps.samples.size(); ++i) {
      if (ps.samples[i].score > ps.samples[best].score) best = i;
      if (ps.samples[i].score < ps.samples[worst].score) worst = i;
    }
    if (ps.samples[best].score - ps.samples[worst].score <= min_margin) continue;
    out.push_back({ps.id, ps.prompt, ps.samples[best].completion, ps.samples[worst].completion});
  }
  return out;
}

std::vector<UnpairedRow> unpaired_rows(const std::vector<PromptSamples>& prompts) {
  std::vector<UnpairedRow> out;
  for (const auto& ps : prompts)
    for (const auto& s : ps.samples) out.push_back({ps.id, ps.prompt, s.completion, s.correct});
  return out;
}

nlohmann::json to_json(const PreferencePair& p) {
  nlohmann::json j = {{"prompt", p.prompt}, {"chosen", p.chosen}, {"rejected", p.rejected}};
  if (!p.id.empty()) j["prompt_id"] = p.id;
  return j;
}

nlohmann::json to_json(const UnpairedRow& r) {
  nlohmann::json j = {{"prompt", r.prompt}, {"completion", r.completion}, {"label", r.label}};
  if (!r.id.empty()) j["prompt_id"] = r.id;
  return j;
}

}  // namespace prefopt
