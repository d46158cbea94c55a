// make_sampling_policy: the tool loop's model-backed policy over sample().
#include <map>
#include <memory>

#include "core/error.h"
#include "generate/sampler.h"
#include "generate/tool_loop.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace prefopt {

namespace {
ToolChunk to_chunk(const Tokenizer& tok, const Sample& s) {
  // The full decode of the sampled ids (not cut at the fence): the trajectory's
  // text must equal decode(ids).
  return ToolChunk{s.ids, tok.decode(std::vector<int32_t>(s.ids.begin(), s.ids.end()), true), s.finish_reason};
}
}  // namespace

ToolPolicy make_sampling_policy(const CausalLM& model, const Tokenizer& tok, const SamplingParams& sp0) {
  SamplingParams base = sp0;
  base.stop_fn = python_block_close;
  auto first = std::make_shared<bool>(true);
  return [&model, &tok, base, first](const std::vector<ToolStep>& steps) {
    std::vector<ToolChunk> out(steps.size());
    const size_t n = static_cast<size_t>(base.n);
    if (*first) {
      *first = false;
      bool layout = steps.size() % n == 0;
      for (size_t s = 0; layout && s < steps.size(); ++s)
        layout = steps[s].row == s && steps[s].round == 0 && steps[s].budget == steps[0].budget &&
                 *steps[s].context == *steps[s - s % n].context;
      if (layout) {
        std::vector<std::vector<int64_t>> prompts;
        for (size_t s = 0; s < steps.size(); s += n) prompts.push_back(*steps[s].context);
        SamplingParams sp = base;
        sp.max_new_tokens = steps[0].budget;
        auto got = sample(model, &tok, prompts, sp);  // one shared prefill per prompt
        for (size_t s = 0; s < steps.size(); ++s) out[s] = to_chunk(tok, got[s / n][s % n]);
        return out;
      }
    }
    // Later rounds: n = 1 per row, own stream (row, round); batched by budget.
    std::map<int, std::vector<size_t>> by_budget;
    for (size_t s = 0; s < steps.size(); ++s) by_budget[steps[s].budget].push_back(s);
    for (auto& [budget, idx] : by_budget) {
      SamplingParams sp = base;
      sp.n = 1, sp.max_new_tokens = budget;
      std::vector<std::vector<int64_t>> prompts;
      for (size_t s : idx) {
        prompts.push_back(*steps[s].context);
        sp.stream_ids.push_back((1ull << 63) | (static_cast<uint64_t>(steps[s].row) << 16) |
                                static_cast<uint64_t>(steps[s].round));
      }
      auto got = sample(model, &tok, prompts, sp);
      for (size_t j = 0; j < idx.size(); ++j) out[idx[j]] = to_chunk(tok, got[j][0]);
    }
    return out;
  };
}

}  // namespace prefopt
