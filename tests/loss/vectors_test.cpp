// Every case of ../shared/data/preference/trl_loss_vectors.json (TRL v0.11.4's
// own outputs): losses and rewards within 1e-6 relative (plus a tiny absolute
// floor for values near zero). Inputs are float32 as TRL computed them.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "loss/logps.h"
#include "loss/objectives.h"

using namespace prefopt;
using nlohmann::json;

namespace {

const json& vectors() {
  static json j = json::parse(read_file(std::string(PREFOPT_SHARED_DATA) + "/preference/trl_loss_vectors.json"));
  return j;
}

at::Tensor vec(const json& a) {
  std::vector<float> v = a.get<std::vector<float>>();
  return at::tensor(at::ArrayRef<float>(v), at::kFloat);
}

void expect_close(const at::Tensor& got, const json& want, const std::string& what, double rel = 1e-6,
                  double abs_floor = 1e-7) {
  auto g = got.to(at::kDouble).contiguous();
  auto w = want.get<std::vector<double>>();
  ASSERT_EQ(g.numel(), (int64_t)w.size()) << what;
  for (size_t i = 0; i < w.size(); ++i) {
    double x = g[i].item<double>();
    EXPECT_NEAR(x, w[i], std::max(rel * std::abs(w[i]), abs_floor)) << what << " [" << i << "]";
  }
}
void expect_close(double got, double want, const std::string& what, double rel = 1e-6) {
  EXPECT_NEAR(got, want, std::max(rel * std::abs(want), 1e-7)) << what;
}

std::string describe(const json& c) {
  json d = c;
  for (auto k : {"losses", "chosen_rewards", "rejected_rewards", "note"}) d.erase(k);
  return d.dump();
}

PairInputs pair_inputs(const std::string& which) {
  const auto& in = vectors()["inputs"][which];
  PairInputs p;
  p.policy_chosen = vec(in["policy_chosen_logps"]);
  p.policy_rejected = vec(in["policy_rejected_logps"]);
  p.ref_chosen = vec(in["reference_chosen_logps"]);
  p.ref_rejected = vec(in["reference_rejected_logps"]);
  return p;
}

UnpairedInputs unpaired_inputs(const std::string& which, const json& kl_inputs) {
  const auto& in = vectors()["inputs"][which];
  auto label = in["label"].get<std::vector<bool>>();
  auto pol = in["policy_logps"].get<std::vector<float>>(), ref = in["reference_logps"].get<std::vector<float>>();
  std::vector<float> pc, rc, pr, rr;
  for (size_t i = 0; i < label.size(); ++i) {
    (label[i] ? pc : pr).push_back(pol[i]);
    (label[i] ? rc : rr).push_back(ref[i]);
  }
  auto t = [](std::vector<float>& v) { return at::tensor(at::ArrayRef<float>(v), at::kFloat); };
  UnpairedInputs u;
  u.policy_chosen = t(pc), u.ref_chosen = t(rc), u.policy_rejected = t(pr), u.ref_rejected = t(rr);
  if (kl_inputs.is_array()) {
    u.policy_kl = vec(in[kl_inputs[0].get<std::string>()]);
    u.ref_kl = vec(in[kl_inputs[1].get<std::string>()]);
  }
  return u;
}

}  // namespace

TEST(TrlVectors, Dpo) {
  int n = 0;
  for (const auto& c : vectors()["dpo"]) {
    DpoParams p;
    p.loss_type = parse_dpo_loss_type(c["loss_type"]);
    p.beta = c["beta"];
    p.label_smoothing = c["label_smoothing"];
    p.reference_free = c["reference_free"];
    p.f_divergence = parse_f_divergence(c["f_divergence_type"]);
    if (c.contains("f_alpha_divergence_coef")) p.alpha_divergence_coef = c["f_alpha_divergence_coef"];
    RunningMoments rm;
    auto out = dpo_loss(pair_inputs(c["inputs"]), p, &rm);
    const auto what = describe(c);
    expect_close(out.losses, c["losses"], "losses " + what);
    expect_close(out.losses.mean().item<double>(), c["loss_mean"], "loss_mean " + what);
    expect_close(out.chosen_rewards, c["chosen_rewards"], "chosen_rewards " + what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], "rejected_rewards " + what);
    if (c.contains("running_mean_after")) expect_close(rm.mean, c["running_mean_after"], "running mean " + what);
    ++n;
  }
  EXPECT_EQ(n, 65);
}

TEST(TrlVectors, DpoLossTypeParse) {
  EXPECT_EQ(parse_dpo_loss_type("apo_down"), DpoLossType::ApoDown);
  try {
    parse_dpo_loss_type("sigmod");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("discopop"), std::string::npos) << e.what();
  }
}

TEST(TrlVectors, Kto) {
  for (const auto& c : vectors()["kto"]) {
    KtoParams p;
    p.loss_type = parse_kto_loss_type(c["loss_type"]);
    p.beta = c["beta"];
    p.desirable_weight = c["desirable_weight"];
    p.undesirable_weight = c["undesirable_weight"];
    auto out = kto_loss(unpaired_inputs(c["inputs"], c["KL_inputs"]), p);
    const auto what = describe(c);
    expect_close(out.losses, c["losses"], "losses " + what);
    expect_close(at::nanmean(out.losses).item<double>(), c["loss_nanmean"], "nanmean " + what);
    expect_close(out.chosen_rewards, c["chosen_rewards"], "chosen_rewards " + what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], "rejected_rewards " + what);
    expect_close(out.extra.at("kl").item<double>(), c["kl"], "kl " + what);
  }
}

TEST(TrlVectors, BcoTwoSteps) {
  RunningMoments rm;  // one state across both steps, as the trainer keeps it
  for (const auto& c : vectors()["bco"]) {
    BcoParams p;
    p.beta = c["beta"];
    auto out = bco_loss(unpaired_inputs(c["inputs"], json()), p, rm);
    const auto what = describe(c);
    expect_close(out.losses, c["losses"], "losses " + what);
    expect_close(out.losses.mean().item<double>(), c["loss_mean"], "loss_mean " + what);
    expect_close(out.chosen_rewards, c["chosen_rewards"], "chosen_rewards " + what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], "rejected_rewards " + what);
    expect_close(out.extra.at("delta").item<double>(), c["delta"], "delta " + what);
    expect_close(rm.mean, c["running_after"]["mean"], "running mean " + what);
    expect_close(rm.count, c["running_after"]["count"], "running count " + what);
    EXPECT_NEAR(rm.var, c["running_after"]["var"].get<double>(), 1e-6 * c["running_after"]["var"].get<double>() + 1e-30)
        << what;
  }
}

TEST(TrlVectors, Cpo) {
  for (const auto& c : vectors()["cpo"]) {
    CpoParams p;
    p.loss_type = parse_cpo_loss_type(c["loss_type"]);
    p.beta = c["beta"];
    p.label_smoothing = c["label_smoothing"];
    if (c.contains("simpo_gamma")) p.simpo_gamma = c["simpo_gamma"];
    auto out = cpo_loss(pair_inputs(c["inputs"]), p);
    const auto what = describe(c);
    expect_close(out.losses, c["losses"], "losses " + what);
    expect_close(out.losses.mean().item<double>(), c["loss_mean"], "loss_mean " + what);
    expect_close(out.chosen_rewards, c["chosen_rewards"], "chosen_rewards " + what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], "rejected_rewards " + what);
  }
}

TEST(TrlVectors, Orpo) {
  for (const auto& c : vectors()["orpo"]) {
    auto out = orpo_loss(pair_inputs(c["inputs"]), c["beta"]);
    const auto what = describe(c);
    expect_close(out.losses, c["losses"], "losses " + what);
    expect_close(out.losses.mean().item<double>(), c["loss_mean"], "loss_mean " + what);
    expect_close(out.chosen_rewards, c["chosen_rewards"], "chosen_rewards " + what);
    expect_close(out.rejected_rewards, c["rejected_rewards"], "rejected_rewards " + what);
    expect_close(out.extra.at("log_odds_ratio").item<double>(), c["mean_log_sigmoid_log_odds"], "lsr " + what);
    expect_close(out.extra.at("log_odds_chosen").item<double>(), c["mean_log_odds"], "lo " + what);
  }
}

// get_batch_logps: logits [B,T,V] are the hidden states under an identity head.
TEST(TrlVectors, GetBatchLogps) {
  for (const auto& c : vectors()["get_batch_logps"]) {
    auto logits_v = c["logits"].get<std::vector<std::vector<std::vector<float>>>>();
    const int64_t B = logits_v.size(), T = logits_v[0].size(), V = logits_v[0][0].size();
    auto logits = at::empty({B, T, V}, at::kFloat);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t v = 0; v < V; ++v) logits[b][t][v] = logits_v[b][t][v];
    auto labels_v = c["labels"].get<std::vector<std::vector<int64_t>>>();
    const int64_t pad = c["label_pad_token_id"];
    // shift: position t predicts labels[t+1]
    auto labels = at::zeros({B, T}, at::kLong);
    auto mask = at::zeros({B, T}, at::kBool);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t + 1 < T; ++t)
        if (labels_v[b][t + 1] != pad) labels[b][t] = labels_v[b][t + 1], mask[b][t] = true;
    auto s = sequence_logps(logits, at::eye(V, at::kFloat), labels, mask, 0.0, 3);
    expect_close(s.sum, c["dpo_sum_logps"], "dpo_sum_logps");
    expect_close(s.count, c["dpo_size_completion"], "size_completion");
    expect_close(s.sum / s.count, c["cpo_avg_logps"], "cpo_avg_logps");
  }
}
