// prefopt t2i-pretrain and t2i-demo --quick as a user runs them: the files
// they promise, with values that can be checked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/fs.h"
#include "core/jsonl.h"

using prefopt::testing::run_prefopt;
using json = nlohmann::json;

TEST(T2ICli, PretrainThenQuickDemo) {
  const std::string d = "/tmp/prefopt_t2i_cli_" + std::to_string(getpid());
  prefopt::remove_all(d);
  prefopt::make_dirs(d);
  int rc = -1;
  const std::string log = run_prefopt("t2i-pretrain --output-dir " + d + "/base --steps 4 --batch 4 --channels 8 "
                                      "--eval-every 0 --seed 3",
                                      &rc, true);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_TRUE(prefopt::file_exists(d + "/base/unet/diffusion_pytorch_model.safetensors"));
  // Reproducible: the same command gives the same bytes (this is how the shipped base is remade);
  // another seed gives other weights. With cross-attention too.
  auto weights = [&](const std::string& dir, const std::string& extra) {
    int rc2 = -1;
    const std::string out = run_prefopt("t2i-pretrain --output-dir " + d + "/" + dir +
                                        " --steps 4 --batch 4 --channels 8 --eval-every 0 " + extra, &rc2, true);
    EXPECT_EQ(rc2, 0) << out;
    return prefopt::read_file(d + "/" + dir + "/unet/diffusion_pytorch_model.safetensors");
  };
  EXPECT_EQ(weights("again", "--seed 3"), prefopt::read_file(d + "/base/unet/diffusion_pytorch_model.safetensors"));
  EXPECT_NE(weights("seed4", "--seed 4"), weights("again2", "--seed 3"));
  EXPECT_EQ(weights("xa1", "--seed 3 --cross-attention 8"), weights("xa2", "--seed 3 --cross-attention 8"));
  EXPECT_TRUE(prefopt::file_exists(d + "/base/scheduler/scheduler_config.json"));
  const auto rows = prefopt::read_jsonl(d + "/base.metrics.jsonl");
  ASSERT_EQ(rows.size(), 1u);  // one line at the last step
  EXPECT_EQ(rows[0]["step"], 4);

  const std::string out = run_prefopt("t2i-demo --quick --base " + d + "/base --output-dir " + d + "/demo --seed 1",
                                      &rc, true);
  ASSERT_EQ(rc, 0) << out;
  const json s = json::parse(prefopt::read_file(d + "/demo/summary.json"));
  EXPECT_DOUBLE_EQ(s["checker_ground_truth_accuracy"].get<double>(), 1.0);
  std::vector<std::string> names;
  for (const auto& a : s["arms"]) {
    names.push_back(a["name"]);
    EXPECT_EQ(a["n"], 32);
    const double acc = a["accuracy"], valid = a["valid_two_objects"];
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, valid);  // a match needs two valid objects
    EXPECT_EQ(a["per_perturbation"].size(), 4u);
    for (const auto& [rel, v] : a["per_relation"].items()) {  // accuracy among the pairs of that relation
      EXPECT_TRUE(rel == "left of" || rel == "right of" || rel == "above" || rel == "below") << rel;
      if (acc == 0) EXPECT_EQ(v.get<double>(), 0.0);
    }
    EXPECT_TRUE(prefopt::file_exists(d + "/demo/grid_" + a["name"].get<std::string>() + ".png"));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"base", "sft_more", "tdpo", "tkto", "diffusion_dpo"}));
  // Paired gains over the control: the mean of per-pair differences is the difference of the
  // accuracies; none for the control itself.
  EXPECT_TRUE(s["arms"][1]["gain_over_sft_more"].is_null());
  for (int i : {0, 2, 3, 4}) {
    const auto& a = s["arms"][i];
    EXPECT_NEAR(a["gain_over_sft_more"].get<double>(),
                a["accuracy"].get<double>() - s["arms"][1]["accuracy"].get<double>(), 1e-12);
    EXPECT_GE(a["gain_stderr"].get<double>(), 0.0);
  }
  // --arms runs only the arms named; an unknown name is a user error before any training.
  const std::string some = run_prefopt("t2i-demo --quick --base " + d + "/base --output-dir " + d +
                                       "/some --arms sft_more tkto", &rc, true);
  ASSERT_EQ(rc, 0) << some;
  const json s2 = json::parse(prefopt::read_file(d + "/some/summary.json"));
  ASSERT_EQ(s2["arms"].size(), 2u);
  EXPECT_EQ(s2["arms"][1]["name"], "tkto");
  EXPECT_EQ(s2["arms"][1]["accuracy"], s["arms"][3]["accuracy"]);  // the same seed: the same tkto arm
  const std::string unknown = run_prefopt("t2i-demo --quick --base " + d + "/base --output-dir " + d +
                                          "/u --arms tdpo_beta7", &rc, true);
  EXPECT_EQ(rc, 2) << unknown;
  EXPECT_NE(unknown.find("tdpo_beta7"), std::string::npos);
  const std::string late = run_prefopt("t2i-demo --quick --base " + d + "/base --output-dir " + d +
                                       "/late --arms tdpo --t-min 1000", &rc, true);
  EXPECT_EQ(rc, 2) << late;  // no timestep left to draw
  EXPECT_NE(late.find("t_min"), std::string::npos);
  // Every preference arm drew one perturbation per image and step (3 steps x 8 images).
  int64_t used = 0;
  for (const auto& [k, v] : s["arms"][2]["perturbations_used"].items()) used += v.get<int64_t>();
  EXPECT_EQ(used, 24);
  const std::string md = prefopt::read_file(d + "/demo/report.md");
  EXPECT_NE(md.find("| tdpo |"), std::string::npos);
  EXPECT_NE(md.find("grid_ground_truth.png"), std::string::npos);
  // A missing base is a user error (exit 2) with a hint.
  const std::string bad = run_prefopt("t2i-demo --quick --base " + d + "/nope --output-dir " + d + "/x", &rc, true);
  EXPECT_EQ(rc, 2) << bad;
  EXPECT_NE(bad.find("HINT"), std::string::npos);
  prefopt::remove_all(d);
}

TEST(T2ICli, QuickDemoFromTheShippedBase) {
  const std::string d = "/tmp/prefopt_t2i_cli_shipped_" + std::to_string(getpid());
  prefopt::remove_all(d);
  int rc = -1;
  // Run from elsewhere: the program finds assets/t2i_base beside its source tree.
  const std::string out = run_prefopt("t2i-demo --quick --output-dir " + d + " --seed 2", &rc, true);
  ASSERT_EQ(rc, 0) << out;
  const json s = json::parse(prefopt::read_file(d + "/summary.json"));
  const std::string base = s["setup"]["base"];
  EXPECT_NE(base.find("assets/t2i_base"), std::string::npos);
  EXPECT_EQ(s["arms"][0]["name"], "base");
  // The shipped model draws two valid objects for a good share of the pairs
  // (an untrained UNet draws none: its output convolution starts at zero).
  EXPECT_GT(s["arms"][0]["valid_two_objects"].get<double>(), 0.2);
  prefopt::remove_all(d);
}
