// The README's first command on a short setting: artifacts exist, the saved
// model and tokenizer load back, summary.json has the documented shape and the
// SFT loss went down.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "model/model.h"
#include "pipeline/task.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;

// Runs through the README's first command itself (./prefopt.sh demo, which sets
// up, builds and runs build/prefopt), so the suite breaks when the front door does.
TEST(Demo, QuickRunThroughTheReadmeCommand) {
  ASSERT_TRUE(file_exists(prefopt::testing::prefopt_exe())) << "prefopt not built";
  std::string dir = (std::filesystem::temp_directory_path() / ("prefopt_demo_test." + std::to_string(::getpid()))).string();
  remove_all(dir);
  const std::string script = std::string(PREFOPT_SOURCE_DIR) + "/prefopt.sh";
  int rc = std::system(("PREFOPT_BUILD_DIR='" PREFOPT_BINARY_DIR "' " + script + " demo --quick --controls --seed 3 --output-dir " +
                        dir + " > " + dir + ".log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + ".log");
  auto s = nlohmann::json::parse(read_file(dir + "/summary.json"));
  EXPECT_EQ(s["seed"], 3);
  EXPECT_EQ(s["method"], "dpo");
  ASSERT_EQ(s["rounds"].size(), 3u);  // sft, round1, round2
  const char* names[] = {"sft", "round1", "round2"};
  for (size_t i = 0; i < 3; ++i) {
    auto& r = s["rounds"][i];
    EXPECT_EQ(r["name"], names[i]);
    double prev = -1;
    for (const char* k : {"1", "2", "4", "8"}) {  // pass@k is non-decreasing in k and in [0, 1]
      ASSERT_TRUE(r["pass_at_k"].contains(k)) << k;
      double v = r["pass_at_k"][k].get<double>();
      EXPECT_GE(v, prev);
      EXPECT_LE(v, 1.0);
      prev = v;
    }
    // pass@k agrees with the per-problem counts in passk.json
    auto pk = nlohmann::json::parse(read_file(dir + "/" + names[i] + "/passk.json"));
    double c = 0, n = 0;
    for (auto& [id, cn] : pk["per_problem"].items()) c += cn["c"].get<double>(), n += cn["n"].get<double>();
    EXPECT_NEAR(r["pass_at_k"]["1"].get<double>(), c / n, 1e-9);
    // every round's model loads (HF format) with the tokenizer beside it
    auto m = CausalLM::from_pretrained(dir + "/" + names[i]);
    auto tok = Tokenizer::load(dir + "/" + names[i]);
    EXPECT_EQ(m->config().vocab_size, tok.vocab_size());
    auto ids = tok.encode("Tom has 12 apples.");
    EXPECT_EQ(tok.decode(ids), "Tom has 12 apples.");
    if (i > 0) {
      EXPECT_TRUE(file_exists(dir + "/" + names[i] + "/pairs.jsonl"));
      EXPECT_GE(r["pairs"].get<int64_t>(), 0);
    }
  }
  EXPECT_LT(s["rounds"][0]["sft_loss_last"].get<double>(), s["rounds"][0]["sft_loss_first"].get<double>() - 1.0);
  // metrics parse and carry TRL's names
  int lines = 0;
  for (auto& row : read_jsonl(dir + "/sft/metrics.jsonl")) {
    EXPECT_TRUE(row.contains("loss") && row.contains("learning_rate") && row.contains("step"));
    ++lines;
  }
  EXPECT_GT(lines, 2);
  if (s["rounds"][1]["train_steps"].get<int64_t>() > 0)
    for (auto& row : read_jsonl(dir + "/round1/metrics.jsonl")) EXPECT_TRUE(row.contains("rewards/margins"));
  // The paired gain over SFT is the difference of the two pass@1 means (same problems, same n).
  for (size_t i = 1; i < 3; ++i) {
    auto& r = s["rounds"][i];
    ASSERT_TRUE(r.contains("gain_over_sft"));
    EXPECT_NEAR(r["gain_over_sft"]["pass_at_1"].get<double>(),
                r["pass_at_k"]["1"].get<double>() - s["rounds"][0]["pass_at_k"]["1"].get<double>(), 1e-9);
    EXPECT_GE(r["gain_over_sft"]["stderr"].get<double>(), 0.0);
  }
  // Controls: sft_more and rft, one entry per round, with about the main arm's training tokens per round
  // (whole steps: within one step's worth of rows).
  ASSERT_TRUE(s.contains("controls"));
  ASSERT_EQ(s["controls"].size(), 2u);
  EXPECT_EQ(s["controls"][0]["name"], "sft_more");
  EXPECT_EQ(s["controls"][1]["name"], "rft");
  for (auto& c : s["controls"]) {
    ASSERT_EQ(c["rounds"].size(), 2u) << c["name"];
    for (size_t i = 0; i < 2; ++i) {
      const auto& cr = c["rounds"][i];
      const double want = s["rounds"][i + 1]["train_tokens"].get<double>();
      const double got = cr["train_tokens"].get<double>();
      const double per_step = got / std::max<double>(1, cr["train_steps"].get<double>());
      if (s["rounds"][i + 1]["train_steps"].get<int64_t>() > 0 && cr["pairs"].get<int64_t>() >= 2)
        EXPECT_LE(std::fabs(got - want), per_step) << c["name"] << " round " << i + 1;
      EXPECT_TRUE(file_exists(dir + "/controls/" + c["name"].get<std::string>() + "/round" + std::to_string(i + 1) +
                              "/passk.json"));
    }
    EXPECT_EQ(c["pass_at_k"], c["rounds"][1]["pass_at_k"]);  // the entry is its last round
  }
  // the report links its pictures
  std::string report = read_file(dir + "/report.md");
  EXPECT_NE(report.find("passk.svg"), std::string::npos);
  EXPECT_TRUE(file_exists(dir + "/passk.svg"));
  EXPECT_NE(report.find("pass@1"), std::string::npos);
}

// prefopt iterate on a user-style setup: an HF model directory (the quick
// demo's SFT model), GSM8K-style JSONL prompts, two rounds, resumable per round.
TEST(Iterate, RoundsAndResume) {
  std::string exe = prefopt::testing::prefopt_exe();
  std::string dir = (std::filesystem::temp_directory_path() / ("prefopt_iterate_test." + std::to_string(::getpid()))).string();
  remove_all(dir);
  make_dirs(dir);
  int rc = std::system((exe + " demo --quick --rounds 0 --seed 5 --output-dir " + dir + "/demo > " + dir + "/demo.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/demo.log");
  auto splits = pipeline::make_task(5, 40, 12);
  std::vector<nlohmann::json> tr, ho;
  for (auto& t : splits.train) tr.push_back({{"question", t.question}, {"answer", t.solution}});
  for (auto& t : splits.held_out) ho.push_back({{"question", t.question}, {"answer", t.solution}});
  write_jsonl(dir + "/train.jsonl", tr);
  write_jsonl(dir + "/held.jsonl", ho);
  auto config = [&](int rounds) {
    atomic_write(dir + "/it.toml", "model = \"" + dir + "/demo/sft\"\nprompts = \"" + dir + "/train.jsonl\"\nheld_out = \"" +
                                       dir + "/held.jsonl\"\noutput_dir = \"" + dir + "/out\"\nrounds = " +
                                       std::to_string(rounds) +
                                       "\nn_samples = 4\neval_n = 4\nmax_new_tokens = 40\nprompt_template = \"{prompt}\\nAnswer: \"\n"
                                       "prompts_per_round = 24\nmax_pairs_per_prompt = 3\ncontrols = [\"rft\"]\n"
                                       "[train]\nlearning_rate = 1e-4\nper_device_train_batch_size = 4\nrpo_alpha = 1.0\n");
  };
  config(1);
  rc = std::system((exe + " iterate --config " + dir + "/it.toml > " + dir + "/it1.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/it1.log");
  auto s1 = nlohmann::json::parse(read_file(dir + "/out/summary.json"));
  ASSERT_EQ(s1["rounds"].size(), 2u);
  EXPECT_EQ(s1["rounds"][0]["name"], "base");
  EXPECT_EQ(s1["rounds"][1]["name"], "round1");
  EXPECT_EQ(s1["rounds"][1]["prompts"], 24);  // a slice of the pool per round
  // up to 3 pairs per prompt, each a distinct (correct, incorrect) combination
  std::map<std::string, int> per_prompt;
  std::set<std::string> seen;
  for (auto& row : read_jsonl(dir + "/out/round1/pairs.jsonl")) {
    EXPECT_LE(++per_prompt[row["prompt"].get<std::string>()], 3);
    EXPECT_TRUE(seen.insert(row["chosen_input_ids"].dump() + "|" + row["rejected_input_ids"].dump()).second);
  }
  ASSERT_TRUE(s1.contains("controls"));
  EXPECT_EQ(s1["controls"][0]["name"], "rft");
  EXPECT_EQ(s1["controls"][0]["rounds"].size(), 1u);
  config(2);
  rc = std::system((exe + " iterate --resume --config " + dir + "/it.toml > " + dir + "/it2.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/it2.log");
  std::string log = read_file(dir + "/it2.log");
  EXPECT_NE(log.find("resuming after round1"), std::string::npos) << log;
  EXPECT_EQ(log.find("\nround1: pass@1"), std::string::npos) << "round 1 ran again";  // ("rft round1" is the control's)
  auto s2 = nlohmann::json::parse(read_file(dir + "/out/summary.json"));
  ASSERT_EQ(s2["rounds"].size(), 3u);
  EXPECT_EQ(s2["rounds"][1], s1["rounds"][1]);  // round 1 kept as it was
  EXPECT_NO_THROW(CausalLM::from_pretrained(dir + "/out/round2"));
  EXPECT_TRUE(file_exists(dir + "/out/report.md"));
  // unknown keys are errors naming the file and line
  atomic_write(dir + "/bad.toml", "model = \"x\"\nroundz = 3\n");
  rc = std::system((exe + " iterate --config " + dir + "/bad.toml > " + dir + "/bad.log 2>&1").c_str());
  EXPECT_NE(rc, 0);
  EXPECT_NE(read_file(dir + "/bad.log").find("bad.toml:2"), std::string::npos) << read_file(dir + "/bad.log");
}

// prefopt iterate with [train] use_peft: each round trains a LoRA adapter.
// peft_reference = "base": one adapter trained on through the rounds against
// the base model, round dirs hold PEFT files only, resume loads base +
// adapter; "previous_round": the adapter is merged after each round (the dir
// also holds the merged model, whose log-probs equal base + adapter).
TEST(Iterate, LoraRounds) {
  std::string exe = prefopt::testing::prefopt_exe();
  std::string dir = (std::filesystem::temp_directory_path() / ("prefopt_iterate_lora." + std::to_string(::getpid()))).string();
  remove_all(dir);
  make_dirs(dir);
  int rc = std::system((exe + " demo --quick --rounds 0 --seed 5 --device cpu --output-dir " + dir + "/demo > " + dir +
                        "/demo.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/demo.log");
  auto splits = pipeline::make_task(5, 40, 12);
  std::vector<nlohmann::json> tr, ho;
  for (auto& t : splits.train) tr.push_back({{"question", t.question}, {"answer", t.solution}});
  for (auto& t : splits.held_out) ho.push_back({{"question", t.question}, {"answer", t.solution}});
  write_jsonl(dir + "/train.jsonl", tr);
  write_jsonl(dir + "/held.jsonl", ho);
  auto config = [&](const std::string& out, int rounds, const std::string& ref) {
    atomic_write(dir + "/it.toml", "model = \"" + dir + "/demo/sft\"\nprompts = \"" + dir + "/train.jsonl\"\nheld_out = \"" +
                                       dir + "/held.jsonl\"\noutput_dir = \"" + dir + "/" + out + "\"\nrounds = " +
                                       std::to_string(rounds) + "\npeft_reference = \"" + ref + "\"\ndevice = \"cpu\"\n" +
                                       "n_samples = 4\neval_n = 2\nmax_new_tokens = 40\nprompt_template = \"{prompt}\\nAnswer: \"\n"
                                       "prompts_per_round = 16\nmax_pairs_per_prompt = 2\n"
                                       "[train]\nlearning_rate = 1e-3\nper_device_train_batch_size = 4\nuse_peft = true\n"
                                       "lora_r = 4\nlora_alpha = 8\nlora_target_modules = \"all-linear\"\n");
  };
  config("base_ref", 1, "base");
  rc = std::system((exe + " iterate --config " + dir + "/it.toml > " + dir + "/a.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/a.log");
  EXPECT_TRUE(file_exists(dir + "/base_ref/round1/adapter_config.json"));
  EXPECT_FALSE(file_exists(dir + "/base_ref/round1/model.safetensors"));
  config("base_ref", 2, "base");
  rc = std::system((exe + " iterate --resume --config " + dir + "/it.toml > " + dir + "/b.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/b.log");
  EXPECT_NE(read_file(dir + "/b.log").find("resuming after round1"), std::string::npos);
  EXPECT_TRUE(file_exists(dir + "/base_ref/round2/adapter_config.json"));
  auto cfg2 = nlohmann::json::parse(read_file(dir + "/base_ref/round2/adapter_config.json"));
  EXPECT_EQ(cfg2["r"], 4);
  EXPECT_EQ(cfg2["peft_type"], "LORA");
  // previous_round: merged after the round; merged log-probs == base + adapter
  config("prev_ref", 1, "previous_round");
  rc = std::system((exe + " iterate --config " + dir + "/it.toml > " + dir + "/c.log 2>&1").c_str());
  ASSERT_EQ(rc, 0) << read_file(dir + "/c.log");
  const std::string r1 = dir + "/prev_ref/round1";
  ASSERT_TRUE(file_exists(r1 + "/adapter_config.json"));
  ASSERT_TRUE(file_exists(r1 + "/model.safetensors"));
  atomic_write(dir + "/ids.jsonl", "{\"input_ids\":[1,5,9,4,7,3]}\n");
  auto merged = nlohmann::json::parse(prefopt::testing::run_prefopt("logprobs --model " + r1 + " --input " + dir + "/ids.jsonl"));
  auto adapted = nlohmann::json::parse(prefopt::testing::run_prefopt("logprobs --model " + dir + "/demo/sft --adapter " + r1 +
                                                                     " --input " + dir + "/ids.jsonl"));
  auto base = nlohmann::json::parse(prefopt::testing::run_prefopt("logprobs --model " + dir + "/demo/sft --input " + dir + "/ids.jsonl"));
  EXPECT_NEAR(merged["sum"].get<double>(), adapted["sum"].get<double>(), 1e-3);
  EXPECT_GT(std::abs(merged["sum"].get<double>() - base["sum"].get<double>()), 1e-4);  // the adapter trained
  // a bad peft_reference and a CUDA device without CUDA are exit 2
  atomic_write(dir + "/bad.toml", read_file(dir + "/it.toml").replace(read_file(dir + "/it.toml").find("previous_round"), 14, "latest"));
  rc = std::system((exe + " iterate --config " + dir + "/bad.toml > " + dir + "/bad.log 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2) << read_file(dir + "/bad.log");
  if (!at::hasCUDA()) {
    rc = std::system((exe + " iterate --device cuda --config " + dir + "/it.toml > " + dir + "/cuda.log 2>&1").c_str());
    EXPECT_EQ(WEXITSTATUS(rc), 2) << read_file(dir + "/cuda.log");
  }
}
