// Sampler: hand-computed filtered distributions, shared prefill == separate
// prefills, greedy == the model's greedy_generate, frequencies, reproducibility.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "generate/sampler.h"
#include "model/model.h"

using namespace prefopt;

TEST(Filtered, HandComputed) {
  // logits [2,1,0,-1], T=0.5 -> z = [4,2,0,-2]; softmax over the 3 kept by top_k=3:
  // e^4, e^2, e^0 / (e^4+e^2+1) = 0.8668, 0.1173, 0.0159
  auto p = filtered_distribution({2, 1, 0, -1}, 0.5, 3, 1.0);
  double s = std::exp(4) + std::exp(2) + 1;
  EXPECT_NEAR(p[0], std::exp(4) / s, 1e-12);
  EXPECT_NEAR(p[1], std::exp(2) / s, 1e-12);
  EXPECT_NEAR(p[2], 1 / s, 1e-12);
  EXPECT_EQ(p[3], 0.0);
  // + top_p 0.9: ascending cumulative 0.0159 (<= 0.1, dropped), 0.1332 (> 0.1, kept)
  auto q = filtered_distribution({2, 1, 0, -1}, 0.5, 3, 0.9);
  EXPECT_EQ(q[2], 0.0);
  EXPECT_NEAR(q[0], std::exp(4) / (std::exp(4) + std::exp(2)), 1e-12);
  EXPECT_NEAR(q[1], std::exp(2) / (std::exp(4) + std::exp(2)), 1e-12);
  // top_p tiny keeps only the most likely token
  auto r = filtered_distribution({0.1f, 0.3f, 0.2f}, 1.0, 0, 0.01);
  EXPECT_EQ(r[1], 1.0);
}

static std::unique_ptr<CausalLM> tiny() {
  return CausalLM::from_pretrained(std::string(PREFOPT_SHARED_DATA) + "/models/llama");
}

TEST(Sampler, SharedPrefillEqualsSeparatePrefills) {
  auto m = tiny();
  SamplingParams sp;
  sp.temperature = 1.0, sp.top_p = 0.95, sp.seed = 11, sp.max_new_tokens = 12, sp.n = 4;
  std::vector<std::vector<int64_t>> prompts{{1, 78, 213, 63, 297}, {1, 5, 9}};
  auto shared = sample(*m, prompts, sp);
  SamplingParams naive = sp;
  naive.share_prefill = false;
  auto separate = sample(*m, prompts, naive);
  for (size_t pi = 0; pi < prompts.size(); ++pi)
    for (int j = 0; j < sp.n; ++j) EXPECT_EQ(separate[pi][j].ids, shared[pi][j].ids) << pi << "," << j;
  // draws differ across samples
  EXPECT_NE(shared[0][0].ids, shared[0][1].ids);
  // reproducible
  auto again = sample(*m, prompts, sp);
  for (size_t pi = 0; pi < prompts.size(); ++pi)
    for (int j = 0; j < sp.n; ++j) EXPECT_EQ(again[pi][j].ids, shared[pi][j].ids);
}

TEST(Sampler, GreedyEqualsModelGreedyAndReference) {
  auto m = tiny();
  auto ref = nlohmann::json::parse(read_file(std::string(PREFOPT_SHARED_DATA) + "/models/llama/reference.json"));
  std::vector<int64_t> prompt = ref["generation"]["prompt_ids"];
  std::vector<int64_t> expect = ref["generation"]["new_token_ids"];
  SamplingParams sp;
  sp.temperature = 0, sp.max_new_tokens = static_cast<int>(expect.size()), sp.n = 3;
  auto s = sample(*m, {prompt, {1, 5, 9}}, sp);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(s[0][j].ids, expect);
  EXPECT_EQ(s[1][0].ids, greedy_generate(*m, {{1, 5, 9}}, sp.max_new_tokens, {})[0]);
}

TEST(Sampler, FirstTokenFrequenciesFollowTheDistribution) {
  auto m = tiny();
  std::vector<int64_t> prompt{1, 78, 213};
  at::NoGradGuard ng;
  auto ids = at::tensor(prompt, at::kLong).view({1, 3});
  auto lg = m->forward(ids, at::ones_like(ids))[0][2].contiguous();
  std::vector<float> l(lg.data_ptr<float>(), lg.data_ptr<float>() + lg.numel());
  auto p = filtered_distribution(l, 1.0, 5, 1.0);
  SamplingParams sp;
  sp.temperature = 1.0, sp.top_k = 5, sp.max_new_tokens = 1, sp.n = 2000, sp.seed = 3;
  auto s = sample(*m, {prompt}, sp);
  std::vector<int> count(l.size(), 0);
  for (auto& x : s[0]) count[x.ids[0]]++;
  double chi2 = 0;
  int support = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(count[i], 0);
      continue;
    }
    ++support;
    double e = p[i] * 2000;
    chi2 += (count[i] - e) * (count[i] - e) / e;
  }
  EXPECT_EQ(support, 5);
  EXPECT_LT(chi2, 18.5);  // chi-square, 4 dof, p = 0.001
}
