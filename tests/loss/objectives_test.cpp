// Objectives beyond the TRL vectors: Triple-PO by hand, DPO gradient by finite
// differences, the BCO density-ratio classifier, NLL/SFT helpers, KTO edge cases.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "loss/objectives.h"

using namespace prefopt;

namespace {
at::Tensor t(std::vector<double> v) { return at::tensor(at::ArrayRef<double>(v), at::kDouble); }
double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

// Triple-PO, written out by hand. Two examples, β = 0.5, α = 0.2.
//   ex0: chosen −10, rejected −14 -> β·logits = 0.5·4 = 2;   −logσ(2)  = log(1+e^−2) = 0.126928011
//   ex1: chosen −9,  rejected −8  -> β·logits = 0.5·(−1) = −0.5; −logσ(−0.5) = log(1+e^0.5) = 0.974076984
//   gold NLL per example 1.5 and 3.0 -> α·nll = 0.3 and 0.6
//   losses = [0.426928011, 1.574076984]; rewards = β·logp = [−5, −4.5], [−7, −4]
// Hinge: relu(1 − 2) = 0, relu(1 + 0.5) = 1.5 -> losses [0.3, 2.1].
TEST(Tpo, HandComputed) {
  PairInputs in;
  in.policy_chosen = t({-10, -9});
  in.policy_rejected = t({-14, -8});
  TpoParams p;
  p.beta = 0.5;
  p.alpha = 0.2;
  auto out = tpo_loss(in, t({1.5, 3.0}), p);
  EXPECT_NEAR(out.losses[0].item<double>(), 0.3 + 0.126928011, 1e-9);
  EXPECT_NEAR(out.losses[1].item<double>(), 0.6 + 0.974076984, 1e-9);
  EXPECT_DOUBLE_EQ(out.chosen_rewards[0].item<double>(), -5.0);
  EXPECT_DOUBLE_EQ(out.chosen_rewards[1].item<double>(), -4.5);
  EXPECT_DOUBLE_EQ(out.rejected_rewards[0].item<double>(), -7.0);
  EXPECT_DOUBLE_EQ(out.rejected_rewards[1].item<double>(), -4.0);
  EXPECT_NEAR(out.extra.at("nll_loss").item<double>(), 2.25, 1e-12);
  p.loss_type = parse_tpo_loss_type("hinge");
  auto h = tpo_loss(in, t({1.5, 3.0}), p);
  EXPECT_NEAR(h.losses[0].item<double>(), 0.3, 1e-12);
  EXPECT_NEAR(h.losses[1].item<double>(), 2.1, 1e-12);
  EXPECT_THROW(parse_tpo_loss_type("ipo"), std::exception);
}

// d mean(L)/d logp for DPO sigmoid (with label smoothing) vs central differences.
TEST(Dpo, SigmoidGradientFiniteDifferences) {
  PairInputs in;
  in.policy_chosen = t({-12.0, -7.5, -20.0}).requires_grad_(true);
  in.policy_rejected = t({-13.0, -6.0, -25.0}).requires_grad_(true);
  in.ref_chosen = t({-12.5, -7.0, -21.0});
  in.ref_rejected = t({-12.0, -6.5, -24.0});
  DpoParams p;
  p.beta = 0.3;
  p.label_smoothing = 0.1;
  dpo_loss(in, p).losses.mean().backward();
  auto f = [&](const at::Tensor& pc, const at::Tensor& pr) {
    PairInputs q = in;
    q.policy_chosen = pc, q.policy_rejected = pr;
    return dpo_loss(q, p).losses.mean().item<double>();
  };
  const double eps = 1e-6;
  auto pc0 = in.policy_chosen.detach(), pr0 = in.policy_rejected.detach();
  for (int i = 0; i < 3; ++i) {
    auto a = pc0.clone(), b = pc0.clone();
    a[i] += eps, b[i] -= eps;
    EXPECT_NEAR(in.policy_chosen.grad()[i].item<double>(), (f(a, pr0) - f(b, pr0)) / (2 * eps), 1e-7);
    a = pr0.clone(), b = pr0.clone();
    a[i] += eps, b[i] -= eps;
    EXPECT_NEAR(in.policy_rejected.grad()[i].item<double>(), (f(pc0, a) - f(pc0, b)) / (2 * eps), 1e-7);
  }
  // closed form for ε = 0.1: dL/dpc_i = −β/3·[(1−ε)(1−σ(βx)) − ε σ(βx)]
  const double x0 = (-12.0 + 13.0) - (-12.5 + 12.0), s0 = sig(0.3 * x0);
  EXPECT_NEAR(in.policy_chosen.grad()[0].item<double>(), -0.1 * (0.9 * (1 - s0) - 0.1 * s0), 1e-12);
}

TEST(Dpo, ReferenceFreeNeedsNoReference) {
  PairInputs in;
  in.policy_chosen = t({-1.0});
  in.policy_rejected = t({-3.0});
  DpoParams p;
  p.reference_free = true;
  auto out = dpo_loss(in, p);
  EXPECT_NEAR(out.losses[0].item<double>(), std::log1p(std::exp(-0.2)), 1e-12);
  p.reference_free = false;
  EXPECT_THROW(dpo_loss(in, p), std::exception);
  p.loss_type = DpoLossType::BcoPair;
  in.ref_chosen = t({-1.0});
  in.ref_rejected = t({-1.0});
  EXPECT_THROW(dpo_loss(in, p, nullptr), std::exception);  // bco_pair needs its running mean
}

// nll_loss: token-weighted over the batch (TRL's cross-entropy over all chosen tokens).
// Row sums −6 over 3 tokens and −2 over 1 token: (6 + 2) / 4 = 2. sft_loss per example: [2, 2].
TEST(Nll, TokenWeighted) {
  EXPECT_NEAR(prefopt::nll_loss(t({-6, -2}), t({3, 1})).item<double>(), 2.0, 1e-12);
  auto s = sft_loss(t({-6, -3}), t({3, 1}));
  EXPECT_NEAR(s[0].item<double>(), 2.0, 1e-12);
  EXPECT_NEAR(s[1].item<double>(), 3.0, 1e-12);
}

// KTO with only desirable rows (a micro-batch may lack one side): no NaN, kl clamped.
TEST(Kto, OneSidedBatch) {
  UnpairedInputs in;
  in.policy_chosen = t({-5.0, -6.0});
  in.ref_chosen = t({-5.5, -6.0});
  in.policy_kl = t({-4.0});
  in.ref_kl = t({-3.0});  // mean(policy_kl − ref_kl) = −1 -> clamped to 0
  KtoParams p;
  auto out = kto_loss(in, p);
  ASSERT_EQ(out.losses.numel(), 2);
  EXPECT_NEAR(out.losses[0].item<double>(), 1 - sig(0.1 * 0.5), 1e-12);
  EXPECT_NEAR(out.losses[1].item<double>(), 0.5, 1e-12);
  EXPECT_EQ(out.extra.at("kl").item<double>(), 0.0);
  EXPECT_EQ(out.rejected_rewards.numel(), 0);
}

// BCO UDM: separable prompts -> confident classifier; weights clamp to the bounds.
TEST(BcoUdm, SeparableData) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto pos = at::randn({40, 3}, gen, at::kDouble) * 0.3 + 3.0;
  auto neg = at::randn({40, 3}, gen, at::kDouble) * 0.3 - 3.0;
  DensityRatioClassifier c;
  c.fit(pos, neg);
  auto pp = c.prob_desirable(pos), pn = c.prob_desirable(neg);
  EXPECT_GT(pp.min().item<double>(), 0.95);
  EXPECT_LT(pn.max().item<double>(), 0.05);
  auto w = c.udm_weight(at::cat({pos, neg}), 0.5, 10.0);
  EXPECT_NEAR(w.narrow(0, 0, 40).min().item<double>(), 10.0, 1e-6);  // p/(1−p) ≫ 10 -> max
  EXPECT_NEAR(w.narrow(0, 40, 40).max().item<double>(), 0.5, 1e-6);  // ≪ 0.5 -> min
}

// Non-separable, identical distributions: the balanced classifier stays near
// p = 0.5 (weights ≈ 1), and the Newton fit is at a stationary point of the
// regularised objective (gradient ≈ 0), checked independently here.
TEST(BcoUdm, NonSeparableStationary) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  auto pos = at::randn({60, 2}, gen, at::kDouble);
  auto neg = at::randn({30, 2}, gen, at::kDouble);
  DensityRatioClassifier c;
  c.fit(pos, neg);
  auto p = c.prob_desirable(at::cat({pos, neg})).to(at::kDouble);
  EXPECT_GT(p.min().item<double>(), 0.2);
  EXPECT_LT(p.max().item<double>(), 0.8);
  // gradient of Σ sw·logloss + ½‖w[:-1]‖² must vanish
  auto X = at::cat({at::cat({pos, neg}), at::ones({90, 1}, at::kDouble)}, 1);
  auto y = at::cat({at::ones({60}, at::kDouble), at::zeros({30}, at::kDouble)});
  auto sw = at::cat({at::full({60}, 90.0 / 120.0, at::kDouble), at::full({30}, 90.0 / 60.0, at::kDouble)});
  auto reg = c.w.clone();
  reg[2] = 0;
  auto grad = at::matmul(X.t(), sw * (p - y)) + reg;
  EXPECT_LT(grad.abs().max().item<double>(), 1e-5);
  // balanced weights: mean predicted probability over each class's weighted mass is centred
  auto w = c.udm_weight(neg, 0.5, 10.0);
  EXPECT_GE(w.min().item<double>(), 0.5);
  EXPECT_LE(w.max().item<double>(), 10.0);
}
