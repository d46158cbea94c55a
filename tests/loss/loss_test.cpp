// Objectives against TRL 0.11.4's own outputs (shared/data/preference/
// trl_loss_vectors.json, MANIFEST §7) plus hand-derived arithmetic.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "loss/objectives.h"

using namespace prefopt;
using json = nlohmann::json;

static const json& vectors() {
  static json j = json::parse(read_file(std::string(PREFOPT_SHARED_DATA) + "/preference/trl_loss_vectors.json"));
  return j;
}
static at::Tensor T(const json& v) { return at::tensor(v.get<std::vector<double>>(), at::kDouble); }

static void expect_close(const at::Tensor& got, const json& exp, const std::string& what, double rel = 1e-6) {
  auto g = got.to(at::kDouble).contiguous();
  ASSERT_EQ(g.numel(), static_cast<int64_t>(exp.size())) << what;
  for (int64_t i = 0; i < g.numel(); ++i) {
    double e = exp[i].get<double>(), x = g[i].item<double>();
    // float32 reference values: relative 1e-6 plus an absolute floor at float eps
    EXPECT_NEAR(x, e, std::max(rel * std::abs(e), 2e-7)) << what << " [" << i << "]";
  }
}

static PairInputs pair_inputs(const std::string& which) {
  const auto& in = vectors()["inputs"][which];
  return {T(in["policy_chosen_logps"]), T(in["policy_rejected_logps"]), T(in["reference_chosen_logps"]),
          T(in["reference_rejected_logps"]), {}, {}};
}

TEST(TrlVectors, EveryDpoLossType) {
  int n = 0;
  for (const auto& c : vectors()["dpo"]) {
    DpoParams p;
    p.loss_type = parse_dpo_loss_type(c["loss_type"]);
    p.beta = c["beta"];
    p.label_smoothing = c["label_smoothing"];
    p.reference_free = c["reference_free"];
    p.f_divergence = parse_f_divergence(c["f_divergence_type"]);
    RunningMoments rm;  // a fresh running mean per case, as the vectors were produced
    auto out = dpo_loss(pair_inputs(c["inputs"]), p, &rm);
    std::string what = c.dump().substr(0, 140);
    expect_close(out.losses, c["losses"], what + " losses");
    expect_close(out.chosen_rewards, c["chosen_rewards"], what + " chosen_rewards");
    expect_close(out.rejected_rewards, c["rejected_rewards"], what + " rejected_rewards");
    ++n;
  }
  EXPECT_EQ(n, 65);
}

TEST(TrlVectors, Kto) {
  const auto& un = vectors()["inputs"]["unpaired"];
  for (const auto& c : vectors()["kto"]) {
    UnpairedInputs in;
    std::vector<double> pc, rc, pr, rr;
    for (size_t i = 0; i < un["label"].size(); ++i) {
      bool lab = un["label"][i];
      (lab ? pc : pr).push_back(un["policy_logps"][i]);
      (lab ? rc : rr).push_back(un["reference_logps"][i]);
    }
    in.policy_chosen = at::tensor(pc, at::kDouble), in.ref_chosen = at::tensor(rc, at::kDouble);
    in.policy_rejected = at::tensor(pr, at::kDouble), in.ref_rejected = at::tensor(rr, at::kDouble);
    if (!c["KL_inputs"].is_null()) {
      in.policy_kl = T(un[c["KL_inputs"][0].get<std::string>()]);
      in.ref_kl = T(un[c["KL_inputs"][1].get<std::string>()]);
    }
    KtoParams p;
    p.loss_type = parse_kto_loss_type(c["loss_type"]);
    p.beta = c["beta"], p.desirable_weight = c["desirable_weight"], p.undesirable_weight = c["undesirable_weight"];
    auto out = kto_loss(in, p);
    std::string what = c["loss_type"].get<std::string>() + " w=" + c["desirable_weight"].dump();
    expect_close(out.losses, c["losses"], what + " losses");
    expect_close(out.chosen_rewards, c["chosen_rewards"], what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], what);
    EXPECT_NEAR(out.extra["kl"].item<double>(), c["kl"].get<double>(), 1e-6) << what;
  }
}

TEST(TrlVectors, BcoTwoStepsWithRunningMean) {
  RunningMoments rm;
  for (const auto& c : vectors()["bco"]) {
    const auto& un = vectors()["inputs"][c["inputs"].get<std::string>()];
    std::vector<double> pc, rc, pr, rr;
    for (size_t i = 0; i < un["label"].size(); ++i) {
      bool lab = un["label"][i];
      (lab ? pc : pr).push_back(un["policy_logps"][i]);
      (lab ? rc : rr).push_back(un["reference_logps"][i]);
    }
    UnpairedInputs in;
    in.policy_chosen = at::tensor(pc, at::kDouble), in.ref_chosen = at::tensor(rc, at::kDouble);
    in.policy_rejected = at::tensor(pr, at::kDouble), in.ref_rejected = at::tensor(rr, at::kDouble);
    BcoParams p;
    p.beta = c["beta"];
    auto out = bco_loss(in, p, rm);
    std::string what = "bco step " + c["step"].dump();
    expect_close(out.losses, c["losses"], what + " losses", 2e-6);
    expect_close(out.chosen_rewards, c["chosen_rewards"], what);
    EXPECT_NEAR(out.extra["delta"].item<double>(), c["delta"].get<double>(), 1e-6) << what;
    EXPECT_NEAR(rm.count, c["running_after"]["count"].get<double>(), 1e-9);
  }
}

TEST(TrlVectors, CpoAndSimpo) {
  int n = 0;
  for (const auto& c : vectors()["cpo"]) {
    CpoParams p;
    p.loss_type = parse_cpo_loss_type(c["loss_type"]);
    p.beta = c["beta"], p.label_smoothing = c["label_smoothing"];
    if (c.contains("simpo_gamma")) p.simpo_gamma = c["simpo_gamma"];
    auto out = cpo_loss(pair_inputs(c["inputs"]), p);
    std::string what = c.dump().substr(0, 120);
    expect_close(out.losses, c["losses"], what);
    expect_close(out.chosen_rewards, c["chosen_rewards"], what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], what);
    ++n;
  }
  EXPECT_EQ(n, 20);
}

TEST(TrlVectors, Orpo) {
  for (const auto& c : vectors()["orpo"]) {
    auto out = orpo_loss(pair_inputs(c["inputs"]), c["beta"]);
    expect_close(out.losses, c["losses"], "orpo " + c["inputs"].get<std::string>());
    expect_close(out.chosen_rewards, c["chosen_rewards"], "orpo rewards");
    if (c["inputs"] == "avg") {
      EXPECT_NEAR(out.extra["log_odds_ratio"].item<double>(), c["mean_log_sigmoid_log_odds"].get<double>(), 1e-6);
      EXPECT_NEAR(out.extra["log_odds_chosen"].item<double>(), c["mean_log_odds"].get<double>(), 1e-6);
    }
  }
}

// Triple-PO written out by hand: α·NLL(gold) − logσ(β(π_w − π_l)).
TEST(HandArithmetic, TriplePo) {
  PairInputs in{at::tensor({-1.0, -2.0}, at::kDouble), at::tensor({-1.5, -1.0}, at::kDouble), {}, {}, {}, {}};
  auto gold_nll = at::tensor({0.7, 1.2}, at::kDouble);
  TpoParams p;
  p.beta = 2.0, p.alpha = 0.5;
  auto out = tpo_loss(in, gold_nll, p);
  // example 0: logits = 0.5, β·logits = 1 -> -logσ(1) = log(1+e^-1) = 0.3132617; + 0.5·0.7 = 0.35
  EXPECT_NEAR(out.losses[0].item<double>(), 0.35 + std::log1p(std::exp(-1.0)), 1e-12);
  // example 1: logits = -1, β·logits = -2 -> log(1+e^2) = 2.1269280; + 0.5·1.2 = 0.6
  EXPECT_NEAR(out.losses[1].item<double>(), 0.6 + std::log1p(std::exp(2.0)), 1e-12);
  EXPECT_NEAR(out.chosen_rewards[0].item<double>(), -2.0, 1e-12);
  EXPECT_NEAR(out.extra["nll_loss"].item<double>(), 0.95, 1e-12);
}

// DPO sigmoid written out: β=0.1, logits = (pc−pr)−(rc−rr).
TEST(HandArithmetic, DpoSigmoidAndGradient) {
  auto pc = at::tensor({-10.0}, at::kDouble).requires_grad_(), pr = at::tensor({-12.0}, at::kDouble).requires_grad_();
  PairInputs in{pc, pr, at::tensor({-11.0}, at::kDouble), at::tensor({-11.5}, at::kDouble), {}, {}};
  DpoParams p;
  auto out = dpo_loss(in, p);
  // logits = 2 − 0.5 = 1.5; loss = log(1 + e^{−0.15})
  EXPECT_NEAR(out.losses[0].item<double>(), std::log1p(std::exp(-0.15)), 1e-12);
  out.losses.sum().backward();
  // d/dpc = −β·σ(−β·logits)
  double s = 1.0 / (1.0 + std::exp(0.15));
  EXPECT_NEAR(pc.grad().item<double>(), -0.1 * s, 1e-12);
  EXPECT_NEAR(pr.grad().item<double>(), 0.1 * s, 1e-12);
  EXPECT_NEAR(out.chosen_rewards[0].item<double>(), 0.1, 1e-12);
  EXPECT_NEAR(out.rejected_rewards[0].item<double>(), -0.05, 1e-12);
}

TEST(Parsing, UnknownLossTypeListsValidOnes) {
  try {
    parse_dpo_loss_type("sigmiod");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sigmoid, robust, ipo"), std::string::npos);
  }
}

TEST(BcoUdm, ClassifierSeparatesAndWeightsAreClamped) {
  // desirable prompts around +1, undesirable around −1 on the first axis
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  auto pos = at::randn({200, 3}, g, at::kDouble) * 0.3;
  pos.select(1, 0).add_(1.0);
  auto neg = at::randn({100, 3}, g, at::kDouble) * 0.3;
  neg.select(1, 0).sub_(1.0);
  DensityRatioClassifier clf;
  clf.fit(pos, neg);
  auto pp = clf.prob_desirable(pos), pn = clf.prob_desirable(neg);
  EXPECT_GT(pp.mean().item<double>(), 0.9);
  EXPECT_LT(pn.mean().item<double>(), 0.1);
  auto w = clf.udm_weight(at::cat({pos.narrow(0, 0, 5), neg.narrow(0, 0, 5)}), 0.5, 10.0);
  EXPECT_NEAR(w.narrow(0, 0, 5).min().item<double>(), 10.0, 1e-6);  // clamped at max
  EXPECT_NEAR(w.narrow(0, 5, 5).max().item<double>(), 0.5, 1e-6);   // clamped at min
  // non-separable: identical distributions give p ≈ 0.5 (balanced classes)
  DensityRatioClassifier c2;
  auto same = at::randn({300, 3}, g, at::kDouble);
  c2.fit(same.narrow(0, 0, 200), same.narrow(0, 200, 100));
  EXPECT_NEAR(c2.prob_desirable(same).mean().item<double>(), 0.5, 0.05);
}
