// Sampler: hand-computed filtered distributions, shared prefill == separate
// prefills, left-padded batches == one-by-one runs, greedy == HF references
// and greedy_generate, draw frequencies (chi-square), reproducibility, EOS,
// stop strings (vLLM semantics).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;

static const std::string kModels = std::string(PREFOPT_SHARED_DATA) + "/models/";

TEST(Filtered, HandComputed) {
  // logits [2,1,0,-1], T=0.5 -> z = [4,2,0,-2].
  // top_k=3 keeps 4,2,0 (the 3rd largest is 0): p = e^4, e^2, e^0 over s = e^4+e^2+1
  //   = 54.598/62.987, 7.389/62.987, 1/62.987 = 0.86681, 0.11731, 0.01588; p[3] = 0.
  auto p = filtered_distribution({2, 1, 0, -1}, 0.5, 3, 1.0);
  const double s = std::exp(4) + std::exp(2) + 1;
  EXPECT_NEAR(p[0], std::exp(4) / s, 1e-12);
  EXPECT_NEAR(p[0], 0.86681, 1e-5);
  EXPECT_NEAR(p[1], std::exp(2) / s, 1e-12);
  EXPECT_NEAR(p[2], 1 / s, 1e-12);
  EXPECT_EQ(p[3], 0.0);
  // + top_p 0.9: ascending cumulative 0.01588 (<= 1-0.9 = 0.1: dropped), then 0.13319 (> 0.1: kept).
  // Renormalised: e^4/(e^4+e^2) = 0.88080, e^2/(e^4+e^2) = 0.11920.
  auto q = filtered_distribution({2, 1, 0, -1}, 0.5, 3, 0.9);
  EXPECT_EQ(q[2], 0.0);
  EXPECT_EQ(q[3], 0.0);
  EXPECT_NEAR(q[0], 0.88080, 1e-5);
  EXPECT_NEAR(q[1], 0.11920, 1e-5);
  // T=1, no top-k, top_p 0.7 on [ln 5, ln 3, ln 2] = probs [0.5, 0.3, 0.2]:
  // cumulative ascending 0.2 (<= 0.3 dropped), 0.5 (> 0.3 kept) -> [0.625, 0.375, 0].
  auto r = filtered_distribution({std::log(5.f), std::log(3.f), std::log(2.f)}, 1.0, 0, 0.7);
  EXPECT_NEAR(r[0], 0.625, 1e-6);
  EXPECT_NEAR(r[1], 0.375, 1e-6);
  EXPECT_EQ(r[2], 0.0);
  // top_p tiny keeps only the most likely token; ties at the k-th value are kept (HF).
  auto t = filtered_distribution({0.1f, 0.3f, 0.2f}, 1.0, 0, 0.01);
  EXPECT_EQ(t[1], 1.0);
  auto ties = filtered_distribution({1, 1, 1, 0}, 1.0, 2, 1.0);
  EXPECT_NEAR(ties[0], 1.0 / 3, 1e-12);
  EXPECT_EQ(ties[3], 0.0);
  EXPECT_THROW(filtered_distribution({1, 2}, 0.0, 0, 1.0), Error);
}

TEST(Filtered, DrawIndexIsTheInverseCdf) {
  std::vector<double> p{0.25, 0, 0.5, 0.25};
  EXPECT_EQ(draw_index(p, 0.0), 0);
  EXPECT_EQ(draw_index(p, 0.2499), 0);
  EXPECT_EQ(draw_index(p, 0.25), 2);
  EXPECT_EQ(draw_index(p, 0.7499), 2);
  EXPECT_EQ(draw_index(p, 0.75), 3);
  EXPECT_EQ(draw_index(p, 0.9999999), 3);
}

static std::unique_ptr<CausalLM> load(const std::string& name) { return CausalLM::from_pretrained(kModels + name); }

TEST(Sampler, SharedPrefillEqualsSeparatePrefills) {
  auto m = load("llama");
  SamplingParams sp;
  sp.temperature = 1.0, sp.top_p = 0.95, sp.seed = 11, sp.max_new_tokens = 12, sp.n = 4;
  std::vector<std::vector<int64_t>> prompts{{1, 78, 213, 63, 297}, {1, 5, 9}};
  // An EOS taken from a free run makes some rows finish early: exercises
  // dropping finished rows from the cache.
  sp.eos_ids = {sample(*m, prompts, sp)[0][0].ids[4]};
  auto shared = sample(*m, prompts, sp);
  SamplingParams naive = sp;
  naive.share_prefill = false;
  auto separate = sample(*m, prompts, naive);
  for (size_t pi = 0; pi < prompts.size(); ++pi)
    for (int j = 0; j < sp.n; ++j) {
      EXPECT_EQ(separate[pi][j].ids, shared[pi][j].ids) << pi << "," << j;
      EXPECT_EQ(separate[pi][j].finish_reason, shared[pi][j].finish_reason);
      EXPECT_NEAR(separate[pi][j].logprob_sum, shared[pi][j].logprob_sum, 1e-4);
    }
  int eos = 0;
  for (auto& ps : shared)
    for (auto& x : ps) eos += x.finish_reason == "eos";
  EXPECT_GT(eos, 0);  // some rows left the batch early...
  EXPECT_LT(eos, 8);  // ...while others kept decoding
  EXPECT_NE(shared[0][0].ids, shared[0][1].ids);  // draws differ across samples
  auto again = sample(*m, prompts, sp);            // reproducible
  for (size_t pi = 0; pi < prompts.size(); ++pi)
    for (int j = 0; j < sp.n; ++j) EXPECT_EQ(again[pi][j].ids, shared[pi][j].ids);
  SamplingParams other = sp;
  other.seed = 12;
  EXPECT_NE(sample(*m, prompts, other)[0][0].ids, shared[0][0].ids);
}

TEST(Sampler, LeftPaddedBatchEqualsOneByOne) {
  auto m = load("qwen2");
  SamplingParams sp;
  sp.temperature = 0.8, sp.top_k = 20, sp.seed = 5, sp.max_new_tokens = 10, sp.n = 3;
  std::vector<std::vector<int64_t>> prompts{{239, 351, 112}, {5, 6, 7, 8, 9, 10, 11}, {42}};
  auto batch = sample(*m, prompts, sp);
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    SamplingParams one = sp;
    one.stream_ids = {pi};  // the stream prompt pi has in the batch
    auto alone = sample(*m, {prompts[pi]}, one);
    for (int j = 0; j < sp.n; ++j) {
      EXPECT_EQ(alone[0][j].ids, batch[pi][j].ids) << pi << "," << j;
      EXPECT_NEAR(alone[0][j].logprob_sum, batch[pi][j].logprob_sum, 1e-4);
    }
  }
}

// Greedy (temperature 0) equals the HF reference generation of each family and
// greedy_generate, for every one of n samples.
TEST(Sampler, GreedyEqualsHfReferenceAndGreedyGenerate) {
  for (const char* name : {"llama", "gpt2", "qwen2", "mistral", "gemma"}) {
    auto m = load(name);
    auto ref = nlohmann::json::parse(read_file(kModels + name + "/reference.json"))["generation"];
    std::vector<int64_t> prompt = ref["prompt_ids"];
    std::vector<int64_t> expect = ref["new_token_ids"];
    SamplingParams sp;
    sp.temperature = 0, sp.max_new_tokens = static_cast<int>(expect.size()), sp.n = 3;
    auto s = sample(*m, {prompt, {3, 5, 9}}, sp);
    for (int j = 0; j < 3; ++j) {
      EXPECT_EQ(s[0][j].ids, expect) << name;
      EXPECT_EQ(s[0][j].finish_reason, "length");
    }
    EXPECT_EQ(s[1][0].ids, greedy_generate(*m, {{3, 5, 9}}, sp.max_new_tokens, {})[0]) << name;
    // logprob_sum is the raw model's: equals token_logprobs over prompt + new tokens.
    std::vector<int64_t> full = prompt;
    full.insert(full.end(), expect.begin(), expect.end());
    auto lp = token_logprobs(*m, {full})[0];
    double want = 0;
    for (size_t t = prompt.size() - 1; t < lp.size(); ++t) want += lp[t];
    EXPECT_NEAR(s[0][0].logprob_sum, want, 1e-3) << name;
  }
}

TEST(Sampler, EosStopsARowAndIsKept) {
  auto m = load("llama");
  auto ref = nlohmann::json::parse(read_file(kModels + "llama/reference.json"))["generation"];
  std::vector<int64_t> prompt = ref["prompt_ids"];
  std::vector<int64_t> expect = ref["new_token_ids"];  // 259 64 282 228 213 ...
  SamplingParams sp;
  sp.temperature = 0, sp.max_new_tokens = 10, sp.eos_ids = {228};
  auto s = sample(*m, {prompt, {3, 5, 9}}, sp);
  EXPECT_EQ(s[0][0].ids, (std::vector<int64_t>{259, 64, 282, 228}));
  EXPECT_EQ(s[0][0].finish_reason, "eos");
  // The other row is unaffected by the first one leaving the batch.
  auto g = greedy_generate(*m, {{3, 5, 9}}, 10, {228})[0];
  EXPECT_EQ(s[1][0].ids, g);
}

TEST(Sampler, FirstTokenFrequenciesFollowTheDistribution) {
  auto m = load("llama");
  std::vector<int64_t> prompt{1, 78, 213};
  at::NoGradGuard ng;
  auto ids = at::tensor(prompt, at::kLong).view({1, 3});
  auto lg = m->forward(ids, at::ones_like(ids))[0][2].contiguous();
  std::vector<float> l(lg.data_ptr<float>(), lg.data_ptr<float>() + lg.numel());
  auto p = filtered_distribution(l, 0.7, 5, 1.0);
  SamplingParams sp;
  sp.temperature = 0.7, sp.top_k = 5, sp.max_new_tokens = 1, sp.n = 2000, sp.seed = 3;
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
  EXPECT_LT(chi2, 18.47);  // chi-square, 4 dof, p = 0.001
}

// A byte-level BPE small enough for the tiny Llama's 320-token vocabulary.
static Tokenizer tiny_tokenizer() {
  return train_bpe({"the cat sat on the mat. the dog ran to the cat! print(2+3) ```python\nx = 1\n```"}, 300, {"<eos>"});
}

TEST(Sampler, StopStringsCutTheTextBeforeTheString) {
  auto m = load("llama");
  Tokenizer tok = tiny_tokenizer();
  ASSERT_LE(tok.vocab_size(), 320);
  SamplingParams sp;
  sp.temperature = 1.0, sp.seed = 9, sp.max_new_tokens = 40, sp.n = 2;
  auto free_run = sample(*m, &tok, {{1, 78, 213}}, sp)[0][0];
  ASSERT_EQ(free_run.finish_reason, "length");
  std::vector<int32_t> ids32(free_run.ids.begin(), free_run.ids.end());
  EXPECT_EQ(free_run.text, tok.decode(ids32, true));
  // Pick the first printable ASCII character after the 3rd byte as the stop string.
  size_t at = std::string::npos;
  for (size_t i = 3; i < free_run.text.size() && at == std::string::npos; ++i)
    if (free_run.text[i] > ' ' && free_run.text[i] < 127) at = i;
  ASSERT_NE(at, std::string::npos) << "no ASCII in the sample; change the seed";
  const std::string stop(1, free_run.text[at]);
  SamplingParams with_stop = sp;
  with_stop.stop_strings = {"\x01\x02 never", stop};
  auto s = sample(*m, &tok, {{1, 78, 213}}, with_stop)[0];
  EXPECT_EQ(s[0].finish_reason, "stop");
  EXPECT_EQ(s[0].text, free_run.text.substr(0, free_run.text.find(stop)));
  ASSERT_LE(s[0].ids.size(), free_run.ids.size());
  EXPECT_TRUE(std::equal(s[0].ids.begin(), s[0].ids.end(), free_run.ids.begin()));  // same stream, cut early
  // The token that completed the stop string is kept in ids: decode(ids) contains it.
  std::vector<int32_t> cut32(s[0].ids.begin(), s[0].ids.end());
  EXPECT_NE(tok.decode(cut32, true).find(stop), std::string::npos);
  // Without a tokenizer stop strings are refused with a hint.
  EXPECT_THROW(sample(*m, {{1, 78, 213}}, with_stop), Error);
}

// The device-side picker (pick_tokens; automatic on a GPU, forced here on the
// CPU) draws the same tokens with the same log-probs as the host path, for
// greedy, temperature, top-k and top-p (the settings of the tests above).
TEST(Sampler, OnDevicePickEqualsHostPick) {
  auto m = load("llama");
  std::vector<std::vector<int64_t>> prompts{{1, 78, 213, 63, 297}, {1, 5, 9}};
  for (auto [t, k, p] : {std::tuple<double, int, double>{0.0, 0, 1.0}, {1.0, 0, 1.0}, {0.8, 20, 1.0}, {1.0, 0, 0.9},
                         {1.3, 50, 0.8}}) {
    SamplingParams sp;
    sp.temperature = t, sp.top_k = k, sp.top_p = p, sp.seed = 5, sp.max_new_tokens = 10, sp.n = 3;
    auto host = sample(*m, prompts, sp);
    sp.on_device = true;
    auto dev = sample(*m, prompts, sp);
    for (size_t pi = 0; pi < prompts.size(); ++pi)
      for (int j = 0; j < sp.n; ++j) {
        EXPECT_EQ(dev[pi][j].ids, host[pi][j].ids) << "T " << t << " k " << k << " p " << p;
        EXPECT_NEAR(dev[pi][j].logprob_sum, host[pi][j].logprob_sum, 1e-4);
      }
  }
  // pick_tokens against filtered_distribution + draw_index on a hand-made row
  auto logits = at::tensor(std::vector<float>{0.5f, 2.0f, -1.0f, 2.0f, 0.0f}, at::kFloat).view({1, 5});
  for (double u : {0.0, 0.3, 0.55, 0.999999}) {
    auto want = draw_index(filtered_distribution({0.5f, 2.0f, -1.0f, 2.0f, 0.0f}, 0.7, 3, 0.9), u);
    EXPECT_EQ(pick_tokens(logits, 0.7, 3, 0.9, {u}).first[0], want) << u;
  }
  EXPECT_EQ(pick_tokens(logits, 0.0, 0, 1.0, {0.0}).first[0], 1);  // greedy: the first maximum
  EXPECT_NEAR(pick_tokens(logits, 0.0, 0, 1.0, {0.0}).second[0],
              at::log_softmax(logits.to(at::kDouble), -1)[0][1].item<double>(), 1e-12);
}
