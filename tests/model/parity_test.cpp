// Parity with transformers 4.44 (reference.json produced by HF's own classes,
// see shared/data/MANIFEST.md §7): logits, per-token log-probs with right and
// left padding, greedy generation with the KV cache.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "model/model.h"

using namespace prefopt;
using json = nlohmann::json;

static std::string dir_of(const std::string& fam) { return std::string(PREFOPT_SHARED_DATA) + "/models/" + fam; }

static at::Tensor to_tensor(const json& rows) {
  std::vector<int64_t> flat;
  int64_t R = rows.size(), C = rows[0].size();
  for (auto& r : rows)
    for (auto& x : r) flat.push_back(x.get<int64_t>());
  return at::tensor(flat, at::kLong).view({R, C});
}

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, LogitsLogprobsAndGreedy) {
  auto dir = dir_of(GetParam());
  auto ref = json::parse(read_file(dir + "/reference.json"));
  auto model = CausalLM::from_pretrained(dir);
  at::NoGradGuard ng;

  // 1. full logits of sequence 0 (right-padded batch)
  auto ids = to_tensor(ref["input_ids"]);
  auto mask = to_tensor(ref["attention_mask"]);
  auto logits = model->forward(ids, mask);
  auto exp0 = ref["logits_seq0"];
  int64_t T0 = exp0.size(), V = exp0[0].size();
  ASSERT_EQ(V, model->config().vocab_size);
  double max_err = 0;
  auto l0 = logits[0].contiguous();
  auto acc = l0.accessor<float, 2>();
  for (int64_t t = 0; t < T0; ++t)
    for (int64_t v = 0; v < V; ++v) max_err = std::max(max_err, std::abs(acc[t][v] - exp0[t][v].get<double>()));
  EXPECT_LE(max_err, 1e-4) << "logits max abs error";

  // 2. per-token log-probs, right padding and left padding (stored position ids)
  auto check_lp = [&](const at::Tensor& lg, const at::Tensor& m, const char* what) {
    auto lsm = at::log_softmax(lg.to(at::kFloat), -1);
    for (int64_t b = 0; b < ids.size(0); ++b) {
      std::vector<int64_t> real;
      for (int64_t t = 0; t < m.size(1); ++t)
        if (m[b][t].item<int64_t>()) real.push_back(t);
      auto exp = ref["next_token_logprobs"][b];
      ASSERT_EQ(exp.size(), real.size() - 1) << what;
      double sum = 0;
      auto idsb = (std::string(what) == "left") ? to_tensor(ref["input_ids_left_padded"])[b] : ids[b];
      for (size_t j = 0; j + 1 < real.size(); ++j) {
        double lp = lsm[b][real[j]][idsb[real[j + 1]].item<int64_t>()].item<double>();
        EXPECT_NEAR(lp, exp[j].get<double>(), 1e-4) << what << " b=" << b << " j=" << j;
        sum += lp;
      }
      EXPECT_NEAR(sum, ref["sequence_logprob_sum"][b].get<double>(), 1e-3) << what;
    }
  };
  check_lp(logits, mask, "right");
  auto lids = to_tensor(ref["input_ids_left_padded"]);
  auto lmask = to_tensor(ref["attention_mask_left_padded"]);
  auto lpos = to_tensor(ref["position_ids_left_padded"]);
  EXPECT_TRUE(at::equal(position_ids_from_mask(lmask), lpos)) << "HF cumsum-1 rule";
  auto llog = model->logits(model->forward_hidden(lids, lpos, lmask));
  check_lp(llog, lmask, "left");

  // 3. the library's token_logprobs on the unpadded sequences
  std::vector<std::vector<int64_t>> seqs;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    std::vector<int64_t> s;
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (mask[b][t].item<int64_t>()) s.push_back(ids[b][t].item<int64_t>());
    seqs.push_back(s);
  }
  auto tl = token_logprobs(*model, seqs);
  for (size_t b = 0; b < seqs.size(); ++b)
    for (size_t j = 0; j < tl[b].size(); ++j) EXPECT_NEAR(tl[b][j], ref["next_token_logprobs"][b][j].get<double>(), 1e-4);

  // 4. greedy generation with the KV cache, token-identical
  auto gen = ref["generation"];
  std::vector<int64_t> prompt = gen["prompt_ids"].get<std::vector<int64_t>>();
  auto expect = gen["new_token_ids"].get<std::vector<int64_t>>();
  auto got = greedy_generate(*model, {prompt}, static_cast<int>(expect.size()), {});
  EXPECT_EQ(got[0], expect);
  // and in a left-padded batch next to a longer prompt
  std::vector<int64_t> longer = prompt;
  longer.insert(longer.end(), {3, 4, 5});
  auto got2 = greedy_generate(*model, {longer, prompt}, static_cast<int>(expect.size()), {});
  EXPECT_EQ(got2[1], expect);
}

INSTANTIATE_TEST_SUITE_P(Families, Parity,
                         ::testing::Values("llama", "mistral", "qwen2", "gemma", "gemma2", "gpt2"));
