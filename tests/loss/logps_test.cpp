// The chunked log-prob core against the plain full-log-softmax path, finite
// differences, and TRL's get_batch_logps vectors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "loss/logps.h"
#include "loss/objectives.h"

using namespace prefopt;

TEST(Logps, ChunkedEqualsReferenceValuesAndGradients) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  for (double cap : {0.0, 3.0}) {
    for (int64_t chunk : {1, 7, 64, 1000}) {
      auto h = at::randn({37, 16}, g).requires_grad_();
      auto w = (at::randn({50, 16}, g) * 0.5).requires_grad_();
      auto lab = at::randint(0, 50, {37}, g, at::kLong);
      auto gout = at::randn({37}, g);
      auto a = token_logps(h, w, lab, cap, chunk);
      (a * gout).sum().backward();
      auto gh = h.grad().clone(), gw = w.grad().clone();
      h.grad().zero_(), w.grad().zero_();
      auto b = token_logps_reference(h, w, lab, cap);
      (b * gout).sum().backward();
      EXPECT_TRUE(at::allclose(a, b, 1e-5, 1e-5)) << cap << " " << chunk;
      EXPECT_TRUE(at::allclose(gh, h.grad(), 1e-5, 1e-5)) << "grad hidden " << cap << " " << chunk;
      EXPECT_TRUE(at::allclose(gw, w.grad(), 1e-5, 1e-5)) << "grad weight " << cap << " " << chunk;
    }
  }
}

TEST(Logps, FiniteDifferencesInDouble) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(9);
  auto h = at::randn({5, 4}, g, at::kDouble).requires_grad_();
  auto w = at::randn({6, 4}, g, at::kDouble).requires_grad_();
  auto lab = at::tensor({0, 5, 2, 2, 1}, at::kLong);
  // the core computes in fp32; compare its gradient to a float64 finite difference of the reference
  auto f = [&](const at::Tensor& hh) { return token_logps_reference(hh, w, lab, 2.0).to(at::kDouble).sum().item<double>(); };
  token_logps(h, w, lab, 2.0, 2).sum().backward();
  const double eps = 1e-4;
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j) {
      auto hp = h.detach().clone(), hm = h.detach().clone();
      hp[i][j] += eps, hm[i][j] -= eps;
      double fd = (f(hp) - f(hm)) / (2 * eps);
      EXPECT_NEAR(h.grad()[i][j].item<double>(), fd, 2e-3) << i << "," << j;
    }
}

TEST(Logps, SequenceLogpsMatchesTrlGetBatchLogps) {
  auto j = nlohmann::json::parse(read_file(std::string(PREFOPT_SHARED_DATA) + "/preference/trl_loss_vectors.json"));
  const auto& c = j["get_batch_logps"][0];
  int64_t B = c["logits"].size(), T = c["logits"][0].size(), V = c["logits"][0][0].size();
  std::vector<float> flat;
  for (auto& b : c["logits"])
    for (auto& t : b)
      for (auto& v : t) flat.push_back(v.get<float>());
  auto logits = at::tensor(flat).view({B, T, V});
  // TRL: labels[:,1:] against logits[:,:-1]; -100 masked. Our labels are already
  // shifted: position t predicts labels[t+1].
  auto lab = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) {
      int64_t l = c["labels"][b][t + 1];
      if (l != -100) lab[b][t] = l, mask[b][t] = 1;
    }
  // hidden = logits with an identity head reproduces the given logits
  auto out = sequence_logps(logits, at::eye(V), lab, mask, 0.0, 3);
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_NEAR(out.sum[b].item<double>(), c["dpo_sum_logps"][b].get<double>(), 1e-5);
    EXPECT_EQ(out.count[b].item<double>(), c["dpo_size_completion"][b].get<double>());
    EXPECT_NEAR((out.sum[b] / out.count[b]).item<double>(), c["cpo_avg_logps"][b].get<double>(), 1e-5);
  }
  // the logit metric: mean over V of the counted rows, summed per sequence
  double expect0 = 0;
  for (int64_t t = 0; t + 1 < T; ++t)
    if (mask[0][t].item<int64_t>()) expect0 += logits[0][t].mean().item<double>();
  EXPECT_NEAR(out.logit_sum[0].item<double>(), expect0, 1e-5);
}

TEST(Logps, RpoNllIsTokenMeanOverChosen) {
  auto s = at::tensor({-6.0, -4.0}), n = at::tensor({3.0, 1.0});
  EXPECT_NEAR(prefopt::nll_loss(s, n).item<double>(), 10.0 / 4.0, 1e-6);
  auto sf = sft_loss(s, n);
  EXPECT_NEAR(sf[0].item<double>(), 2.0, 1e-6);
  EXPECT_NEAR(sf[1].item<double>(), 4.0, 1e-6);
}
