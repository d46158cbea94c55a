// bench_generate: sampling tokens/s for n = 16 samples of one ~256-token prompt
// (64 new tokens, ~20M-parameter Llama from config) with one shared prompt
// prefill vs 16 separate prefills. One run, ratio printed as a JSON line.
#include <ATen/ATen.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "core/rng.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "model/runtime.h"

using namespace prefopt;

int main() {
  configure_threads(kRecommendedAtenThreads);
  auto m = CausalLM::from_config(llama_config(32000, 256, 6, 8, 4, 768, 1024), 1);
  Rng rng(0);
  std::vector<int64_t> prompt;
  for (int i = 0; i < 256; ++i) prompt.push_back(static_cast<int64_t>(rng.below(32000)));
  SamplingParams sp;
  sp.n = 16, sp.max_new_tokens = 64, sp.temperature = 1.0, sp.seed = 1;
  auto timed = [&](bool share) {
    sp.share_prefill = share;
    double t = now_seconds();
    auto s = sample(*m, {prompt}, sp);
    long toks = 0;
    for (auto& x : s[0]) toks += x.ids.size();
    return std::make_pair(toks / (now_seconds() - t), toks);
  };
  timed(true);  // warm-up
  auto [shared, n1] = timed(true);
  auto [separate, n2] = timed(false);
  std::printf("%s\n", nlohmann::json{{"bench", "sampling_n16"}, {"params_millions", m->num_parameters() / 1e6},
                                     {"new_tokens", n1}, {"shared_prefill_tokens_per_s", shared},
                                     {"separate_prefill_tokens_per_s", separate}, {"ratio", shared / separate}}
                          .dump()
                          .c_str());
}
