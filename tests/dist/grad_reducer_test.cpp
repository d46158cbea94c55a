// GradReducer on one rank (no process group: every all-reduce is the
// identity), so what it hands back must be exactly the gradients autograd
// accumulated: the bucket layout (reverse order, the cap, a tensor larger
// than the cap alone), the accumulated gradient rather than the last
// micro-batch's (a hook before accumulation would lose the first), buckets
// started from the hooks during backward, tensors without a gradient, a
// gradient accumulated twice in one armed step (overlap turns off), and the
// hooks removed with the reducer.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

#include "dist/dist.h"
#include "train/dist_sync.h"

using namespace prefopt;

namespace {

using Params = std::vector<std::pair<std::string, at::Tensor>>;

// e[10], a[100], b[300], c[50], d[200] floats; e (first, so in the last bucket) is never used by the losses.
Params make_params() {
  Params p;
  for (auto [name, n] : std::vector<std::pair<std::string, int64_t>>{{"e", 10}, {"a", 100}, {"b", 300}, {"c", 50},
                                                                      {"d", 200}})
    p.push_back({name, at::randn({n}, at::TensorOptions().dtype(at::kFloat)).requires_grad_(true)});
  return p;
}

// A loss over p[from..4] (a..d by default) with inputs drawn from `seed`.
at::Tensor loss(const Params& p, uint64_t seed, int from = 1) {
  at::manual_seed(seed);
  at::Tensor l = at::zeros({}, at::kFloat);
  for (int i = 1; i < 5; ++i) {
    at::Tensor x = at::randn(p[i].second.sizes());
    if (i >= from) l = l + (p[i].second * x).tanh().sum();
  }
  return l;
}

constexpr double kCap = 1000.0 / (1024.0 * 1024.0);  // 1000 bytes

}  // namespace

TEST(GradReducer, BucketsInReverseOrderUnderTheCap) {
  ASSERT_FALSE(dist::active());
  Params p = make_params();
  // Reverse: d (800 B) + c (200 B) = 1000 fit, b (1200 B) alone, a (400 B) + e (40 B).
  GradReducer r(p, kCap, true);
  EXPECT_EQ(r.buckets(), 3u);
  GradReducer smaller(p, 999.0 / (1024.0 * 1024.0), true);
  EXPECT_EQ(smaller.buckets(), 4u);
  GradReducer big(p, 25, true);
  EXPECT_EQ(big.buckets(), 1u);
}

TEST(GradReducer, HandsBackTheAccumulatedGradientsStartedDuringBackward) {
  Params p = make_params(), q;
  for (auto& [n, t] : p) q.push_back({n, t.detach().clone().requires_grad_(true)});
  // Reference: plain autograd accumulation of two micro-batches.
  loss(q, 1).backward();
  loss(q, 2).backward();
  GradReducer r(p, kCap, true);
  loss(p, 1).backward();  // an earlier micro-batch: not armed
  EXPECT_EQ(r.started_in_backward(), 0);
  r.arm();
  loss(p, 2).backward();
  // Buckets {d, c} and {b} completed in the hooks; {a, e} waits for e, which gets no gradient: finish() starts it.
  EXPECT_EQ(r.started_in_backward(), 0) << "counted when finish() runs";
  r.finish();
  EXPECT_EQ(r.started_in_backward(), 2);
  for (int i = 1; i < 5; ++i) {
    ASSERT_TRUE(p[i].second.grad().defined()) << p[i].first;
    EXPECT_TRUE(at::equal(p[i].second.grad(), q[i].second.grad())) << p[i].first;
  }
  EXPECT_FALSE(p[0].second.grad().defined()) << "no gradient on any rank: none after the reduction";
  // The reduction after backward only (overlap off) gives the same bits and starts nothing from the hooks.
  Params s = make_params();
  for (size_t i = 0; i < s.size(); ++i) s[i].second = p[i].second.detach().clone().requires_grad_(true);
  GradReducer off(s, kCap, false);
  loss(s, 1).backward();
  off.arm();
  loss(s, 2).backward();
  off.finish();
  EXPECT_EQ(off.started_in_backward(), 0);
  for (int i = 1; i < 5; ++i) EXPECT_TRUE(at::equal(s[i].second.grad(), q[i].second.grad())) << s[i].first;
}

TEST(GradReducer, TensorUntouchedByTheLastMicroBatchKeepsItsGradient) {
  Params p = make_params(), q;
  for (auto& [n, t] : p) q.push_back({n, t.detach().clone().requires_grad_(true)});
  loss(q, 1).backward();
  loss(q, 2, /*from=*/3).backward();
  GradReducer r(p, kCap, true);
  loss(p, 1).backward();
  r.arm();
  loss(p, 2, 3).backward();  // only c's and d's gradients change; a and b keep the first micro-batch's
  r.finish();
  for (int i = 1; i < 5; ++i) EXPECT_TRUE(at::equal(p[i].second.grad(), q[i].second.grad())) << p[i].first;
  EXPECT_EQ(r.started_in_backward(), 1) << "{d, c} only";
}

TEST(GradReducer, GradientAccumulatedTwiceWhileArmedTurnsOverlapOff) {
  Params p = make_params(), q;
  for (auto& [n, t] : p) q.push_back({n, t.detach().clone().requires_grad_(true)});
  loss(q, 1).backward();
  loss(q, 2).backward();
  GradReducer r(p, kCap, true);
  r.arm();
  loss(p, 1).backward();
  loss(p, 2).backward();  // every hook fires a second time: the buckets started hold partial gradients
  r.finish();
  EXPECT_FALSE(r.overlap());
  for (int i = 1; i < 5; ++i) EXPECT_TRUE(at::equal(p[i].second.grad(), q[i].second.grad())) << p[i].first;
  const int64_t before = r.started_in_backward();
  r.arm();
  loss(p, 3).backward();
  r.finish();
  EXPECT_EQ(r.started_in_backward(), before) << "overlap stays off";
}

TEST(GradReducer, HooksLeaveWithTheReducer) {
  Params p = make_params();
  // Held here, so the node outlives the reducer (which also holds it): its hooks must be deleted, not dropped with it.
  const auto acc = torch::autograd::impl::grad_accumulator(p[1].second);
  {
    GradReducer r(p, kCap, true);
    EXPECT_EQ(acc->post_hooks().size(), 1u);
  }
  EXPECT_EQ(acc->post_hooks().size(), 0u);
  loss(p, 1).backward();  // no hook of a dead reducer runs
  EXPECT_TRUE(p[1].second.grad().defined());
}
