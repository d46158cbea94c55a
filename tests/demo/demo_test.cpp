// The README's first command on a short setting: artifacts exist, the saved
// model and tokenizer load back, summary.json has the documented shape and the
// SFT loss went down.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;

TEST(Demo, QuickRunProducesLoadableArtifacts) {
  std::string exe = std::string(PREFOPT_BINARY_DIR) + "/src/cli/prefopt";
  if (!file_exists(exe)) GTEST_SKIP() << "prefopt not built";
  std::string dir = (std::filesystem::temp_directory_path() / "prefopt_demo_test").string();
  remove_all(dir);
  int rc = std::system((exe + " demo --quick --seed 3 --output-dir " + dir + " > " + dir + ".log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + ".log");
  auto s = nlohmann::json::parse(read_file(dir + "/summary.json"));
  EXPECT_EQ(s["seed"], 3);
  ASSERT_EQ(s["rounds"].size(), 1u);
  auto& r = s["rounds"][0];
  EXPECT_EQ(r["name"], "sft");
  std::vector<std::string> ks;
  double prev = -1;
  for (auto& [k, v] : r["pass_at_k"].items()) {
    ks.push_back(k);
    EXPECT_GE(v.get<double>(), 0.0);
    EXPECT_LE(v.get<double>(), 1.0);
  }
  for (const char* k : {"1", "2", "4", "8"}) {  // pass@k is non-decreasing in k
    ASSERT_TRUE(r["pass_at_k"].contains(k)) << k;
    EXPECT_GE(r["pass_at_k"][k].get<double>(), prev);
    prev = r["pass_at_k"][k].get<double>();
  }
  EXPECT_EQ(ks.size(), 4u);
  EXPECT_EQ(r["train_steps"], 30);
  EXPECT_LT(r["sft_loss_last"].get<double>(), r["sft_loss_first"].get<double>() - 1.0);
  auto m = CausalLM::from_pretrained(dir + "/sft");
  auto tok = Tokenizer::load(dir + "/sft");
  EXPECT_EQ(m->config().vocab_size, tok.vocab_size());
  auto ids = tok.encode("Tom has 12 apples.");
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok.decode(ids), "Tom has 12 apples.");
}
