// The diffusion preference losses by hand: Diffusion-DPO, Diffusion-KTO,
// TDPO and TKTO values, policy = reference, identical captions, shared t/ε.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>

#include "diffusion/ddpm.h"
#include "diffusion/losses.h"
#include "diffusion/t2i.h"
#include "diffusion/unet.h"

using namespace prefopt::diffusion;

namespace {
at::Tensor vec(std::vector<double> v) { return at::tensor(v, at::kDouble); }
}  // namespace

TEST(DiffusionLosses, PerExampleMse) {
  auto a = at::zeros({2, 1, 2, 2}, at::kDouble), b = at::zeros({2, 1, 2, 2}, at::kDouble);
  b[0].fill_(1.0);
  b[1][0][0][0] = 2.0;  // (4) / 4 = 1
  auto m = per_example_mse(a, b);
  EXPECT_DOUBLE_EQ(m[0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(m[1].item<double>(), 1.0);
}

TEST(DiffusionLosses, DpoByHand) {
  // inside = -β/2 ((0.5-0.4) - (0.3-0.4)) = -10/2 * 0.2 = -1 -> loss = log(1 + e).
  auto r = diffusion_dpo_loss(vec({0.5}), vec({0.3}), vec({0.4}), vec({0.4}), 10.0);
  EXPECT_NEAR(r.loss.item<double>(), std::log(1 + std::exp(1.0)), 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.0);
  EXPECT_NEAR(r.margin, -1.0, 1e-12);
  // The winner's error dropped below the reference: inside = -5 * (-0.2) = +1 -> log(1 + e^-1).
  auto r2 = diffusion_dpo_loss(vec({0.2}), vec({0.4}), vec({0.4}), vec({0.4}), 10.0);
  EXPECT_NEAR(r2.loss.item<double>(), std::log(1 + std::exp(-1.0)), 1e-12);
  EXPECT_DOUBLE_EQ(r2.accuracy, 1.0);
  // Policy = reference: ln 2 whatever the errors.
  auto r3 = diffusion_dpo_loss(vec({0.7, 0.1}), vec({0.2, 0.9}), vec({0.7, 0.1}), vec({0.2, 0.9}), 5000.0);
  EXPECT_NEAR(r3.loss.item<double>(), std::log(2.0), 1e-12);
}

TEST(DiffusionLosses, KtoByHand) {
  // g = ref - model = [0.1, -0.2]; mean -0.05 clamps to 0; z = [+10*0.1, -10*(-0.2)] = [1, 2].
  auto r = diffusion_kto_loss(vec({0.2, 0.5}), vec({0.3, 0.3}), vec({1, 0}), 10.0);
  const double s1 = 1 / (1 + std::exp(-1.0)), s2 = 1 / (1 + std::exp(-2.0));
  EXPECT_NEAR(r.loss.item<double>(), ((1 - s1) + (1 - s2)) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
  // g = [0.1, 0.2], reference point 0.15: z = [10*(-0.05), -10*(0.05)] = [-0.5, -0.5].
  auto r2 = diffusion_kto_loss(vec({0.2, 0.1}), vec({0.3, 0.3}), vec({1, 0}), 10.0);
  EXPECT_NEAR(r2.loss.item<double>(), 1 - 1 / (1 + std::exp(0.5)), 1e-12);
  // Weights: λ_D = 2, λ_U = 0.5 on the first case.
  auto r3 = diffusion_kto_loss(vec({0.2, 0.5}), vec({0.3, 0.3}), vec({1, 0}), 10.0, 2.0, 0.5);
  EXPECT_NEAR(r3.loss.item<double>(), (2 * (1 - s1) + 0.5 * (1 - s2)) / 2, 1e-12);
  // Policy = reference: 0.5.
  auto r4 = diffusion_kto_loss(vec({0.4, 0.9, 0.1}), vec({0.4, 0.9, 0.1}), vec({1, 0, 1}), 3000.0);
  EXPECT_NEAR(r4.loss.item<double>(), 0.5, 1e-12);
}

TEST(DiffusionLosses, KtoReferencePointIsDetached) {
  // d/dm of the loss for one desirable example with the reference point detached:
  // L = 1 - σ(β (r - m - z0)), dL/dm = β σ'(·); with z0 = max(0, r - m) = 0 here (m > r).
  auto m = vec({0.5}).requires_grad_(true);
  auto r = diffusion_kto_loss(m, vec({0.4}), vec({1}), 2.0);
  r.loss.backward();
  const double z = 2.0 * (0.4 - 0.5), s = 1 / (1 + std::exp(-z));
  EXPECT_NEAR(m.grad().item<double>(), 2.0 * s * (1 - s), 1e-12);
  // With m < r the reference point is g itself (detached): z = 0, the gradient is β/4, not 0.
  auto m2 = vec({0.3}).requires_grad_(true);
  diffusion_kto_loss(m2, vec({0.4}), vec({1}), 2.0).loss.backward();
  EXPECT_NEAR(m2.grad().item<double>(), 2.0 * 0.25, 1e-12);
}

TEST(DiffusionLosses, TdpoTktoAtReferenceAndByHand) {
  auto noise = at::zeros({1, 1, 1, 2}, at::kDouble);
  auto pos = at::full({1, 1, 1, 2}, 0.5, at::kDouble);     // mse 0.25
  auto neg = at::full({1, 1, 1, 2}, 0.3, at::kDouble);     // mse 0.09
  auto refp = at::full({1, 1, 1, 2}, 0.4, at::kDouble);    // mse 0.16
  EXPECT_NEAR(tdpo_loss(pos, neg, pos, neg, noise, 4000).loss.item<double>(), std::log(2.0), 1e-12);
  EXPECT_NEAR(tkto_loss(pos, neg, pos, neg, noise, 4000).loss.item<double>(), 0.5, 1e-12);
  // inside = -β/2 ((0.25 - 0.16) - (0.09 - 0.16)) = -β/2 * 0.16 ; β = 10 -> -0.8.
  EXPECT_NEAR(tdpo_loss(pos, neg, refp, refp, noise, 10).loss.item<double>(), std::log(1 + std::exp(0.8)), 1e-12);
  // TKTO: g = [0.16-0.25, 0.16-0.09] = [-0.09, 0.07]; mean -0.01 -> 0; z = [10*-0.09, -10*0.07].
  const double a = 1 / (1 + std::exp(0.9)), b = 1 / (1 + std::exp(0.7));
  EXPECT_NEAR(tkto_loss(pos, neg, refp, refp, noise, 10).loss.item<double>(), ((1 - a) + (1 - b)) / 2, 1e-12);
}

TEST(DiffusionLosses, IdenticalCaptionsGiveZeroGradient) {
  UNetConfig cfg;
  cfg.base_channels = 8;
  cfg.cond_dim = 16;
  cfg.time_embed_dim = 8;
  cfg.token_dim = 4;
  cfg.norm_groups = 4;
  TinyUNet policy(cfg, 1);
  // Perturb the policy away from the reference so the branches are not trivially at the optimum.
  TinyUNet ref = policy.clone();
  at::manual_seed(7);
  for (auto& [n, t] : policy.params()) t.add_(at::randn(t.sizes()) * 0.05);
  policy.set_requires_grad(true);
  const Schedule sched(SchedulerConfig{});
  at::manual_seed(0);
  auto x0 = at::rand({4, 3, 16, 16}) * 2 - 1, noise = at::randn({4, 3, 16, 16});
  auto t = at::tensor(std::vector<int64_t>{10, 300, 600, 900});
  std::vector<Caption> caps = {Caption{0, 0, 0, 1, 1}, Caption{1, 2, 3, 2, 0}, Caption{3, 1, 2, 0, 2},
                               Caption{2, 0, 1, 3, 1}};
  for (const char* kind : {"tdpo", "tkto"}) {
    const auto in = caption_pair_inputs(sched, x0, caps, caps, noise, t);  // the "perturbed" caption is the same
    // Each branch in its own forward (a batched forward may round rows differently).
    auto xs = in.x_t.chunk(2, 0), ts = in.t.chunk(2, 0), toks = in.tokens.chunk(2, 0);
    std::vector<at::Tensor> eps = {policy.forward(xs[0], ts[0], toks[0]), policy.forward(xs[1], ts[1], toks[1])};
    std::vector<at::Tensor> r;
    {
      at::NoGradGuard g;
      r = {ref.forward(xs[0], ts[0], toks[0]), ref.forward(xs[1], ts[1], toks[1])};
    }
    auto l = std::string(kind) == "tdpo" ? tdpo_loss(eps[0], eps[1], r[0], r[1], noise, 2000)
                                         : tkto_loss(eps[0], eps[1], r[0], r[1], noise, 2000);
    l.loss.backward();
    double gmax = 0;
    for (auto& [n, p] : policy.params())
      if (p.grad().defined()) gmax = std::max(gmax, p.grad().abs().max().item<double>()), p.grad().zero_();
    EXPECT_LT(gmax, 1e-12) << kind;  // zero up to rounding in σ(z) + σ(−z) = 1 (the control below is > 1e-4)
  }
  // A control: different captions give a gradient.
  std::vector<Caption> other = {Caption{1, 0, 0, 0, 1}, Caption{1, 2, 2, 2, 0}, Caption{3, 0, 2, 0, 2},
                                Caption{2, 0, 0, 3, 1}};
  const auto in = caption_pair_inputs(sched, x0, caps, other, noise, t);
  auto eps = policy.forward(in.x_t, in.t, in.tokens).chunk(2, 0);
  auto r = ref.forward(in.x_t, in.t, in.tokens).detach().chunk(2, 0);
  tdpo_loss(eps[0], eps[1], r[0], r[1], noise, 2000).loss.backward();
  double gmax = 0;
  for (auto& [n, p] : policy.params())
    if (p.grad().defined()) gmax = std::max(gmax, p.grad().abs().max().item<double>());
  EXPECT_GT(gmax, 1e-4);
}

TEST(DiffusionLosses, PairInputsShareTAndNoise) {
  const Schedule sched(SchedulerConfig{});
  at::manual_seed(1);
  auto x0 = at::rand({3, 3, 16, 16}) * 2 - 1, x1 = at::rand({3, 3, 16, 16}) * 2 - 1;
  auto noise = at::randn({3, 3, 16, 16});
  auto t = at::tensor(std::vector<int64_t>{5, 500, 999});
  std::vector<Caption> pos = {Caption{0, 0, 0, 1, 1}, Caption{1, 2, 3, 2, 0}, Caption{3, 1, 2, 0, 2}};
  std::vector<Caption> neg = {Caption{1, 0, 0, 0, 1}, Caption{1, 2, 2, 2, 0}, Caption{3, 0, 2, 0, 2}};
  const auto c = caption_pair_inputs(sched, x0, pos, neg, noise, t);
  auto xs = c.x_t.chunk(2, 0), ts = c.t.chunk(2, 0), toks = c.tokens.chunk(2, 0);
  EXPECT_TRUE(at::equal(xs[0], xs[1]));  // one x_t
  EXPECT_TRUE(at::equal(ts[0], ts[1]));  // one t
  EXPECT_FALSE(at::equal(toks[0], toks[1]));
  EXPECT_TRUE(at::equal(toks[0], tokens_tensor(pos)));
  // x_t is sqrt(ᾱ) x0 + sqrt(1-ᾱ) ε with the schedule's ᾱ.
  const double ab = sched.alphas_cumprod()[500];
  EXPECT_TRUE(at::allclose(xs[0][1], std::sqrt(ab) * x0[1] + std::sqrt(1 - ab) * noise[1], 1e-5, 1e-6));
  const auto d = image_pair_inputs(sched, x0, x1, pos, noise, t);
  auto dx = d.x_t.chunk(2, 0), dt = d.t.chunk(2, 0), dtok = d.tokens.chunk(2, 0);
  EXPECT_TRUE(at::equal(dt[0], dt[1]));
  EXPECT_TRUE(at::equal(dtok[0], dtok[1]));  // one caption
  // The same ε: the difference of the two x_t is sqrt(ᾱ) (x0_w - x0_l) alone.
  EXPECT_TRUE(at::allclose(dx[0][1] - dx[1][1], std::sqrt(ab) * (x0[1] - x1[1]), 1e-5, 1e-5));
}
