// `prefopt train` end to end: every method on the shared TRL files with a
// tiny model, kill -9 then --resume reproduces the loss trajectory, config
// file + flags, documented errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/run_cli.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "model/model.h"

using namespace prefopt;
using prefopt::testing::run_prefopt;
namespace fs = std::filesystem;

namespace {

const std::string kData = PREFOPT_SHARED_DATA;

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_train_cli_" + name + "." + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// A tiny Llama over Qwen2's tokenizer (its tokenizer_config.json carries the
// ChatML template), saved in HF format.
std::string tiny_model(const std::string& dir) {
  static bool made = false;
  const std::string m = dir + "/tiny";
  if (made && fs::exists(m + "/model.safetensors")) return m;
  auto cfg = llama_config(151646, 32, 1, 2, 1, 64, 512, /*tie=*/true);
  auto model = CausalLM::from_config(cfg, 1);
  model->save_pretrained(m);
  for (auto& e : fs::directory_iterator(kData + "/tokenizers/qwen2"))
    if (e.path().filename() != "config.json") fs::copy(e.path(), m + "/" + e.path().filename().string());
  made = true;
  return m;
}

std::vector<double> losses(const std::string& metrics) {
  std::vector<double> v;
  for (auto& r : read_jsonl(metrics))
    if (r.contains("loss")) v.push_back(r["loss"].get<double>());
  return v;
}

}  // namespace

TEST(TrainCli, EveryMethodOnSharedData) {
  const std::string d = tmpdir("methods");
  const std::string model = tiny_model(d);
  const std::string dpo = kData + "/preference/dpo_en_demo.trl.jsonl";
  const std::string kto = kData + "/preference/kto_en_demo.trl.jsonl";
  // Triple-PO rows: the chosen reply doubles as the gold reference.
  std::vector<json> triple;
  for (auto& r : read_jsonl(dpo)) {
    r["reference"] = r["chosen"];
    triple.push_back(r);
    if (triple.size() == 16) break;
  }
  write_jsonl(d + "/triple.jsonl", triple);
  struct Case {
    std::string method, data, extra;
  };
  std::vector<Case> cases = {{"dpo", dpo, ""},
                             {"dpo", dpo, "--loss_type ipo --rpo_alpha 0.5"},
                             {"dpo", kData + "/preference/hh-rlhf_harmless-base_test.jsonl.gz", "--loss_type hinge"},
                             {"kto", kto, ""},
                             {"bco", kto, "--bco_udm"},
                             {"tpo", d + "/triple.jsonl", ""},
                             {"orpo", dpo, ""},
                             {"cpo", dpo, ""},
                             {"simpo", dpo, ""},
                             {"sft", kto, ""}};
  for (auto& c : cases) {
    const std::string out = d + "/out_" + c.method;
    fs::remove_all(out);
    int rc = -1;
    std::string log = run_prefopt("train --method " + c.method + " --model " + model + " --data " + c.data +
                                      " --output_dir " + out +
                                      " --max_steps 2 --per_device_train_batch_size 2 --max_length 96 "
                                      "--max_prompt_length 48 --learning_rate 1e-3 --logging_steps 1 " + c.extra,
                                  &rc, true);
    ASSERT_EQ(rc, 0) << c.method << " " << c.extra << "\n" << log;
    auto l = losses(out + "/metrics.jsonl");
    ASSERT_EQ(l.size(), 2u) << c.method;
    for (double x : l) EXPECT_TRUE(std::isfinite(x)) << c.method;
    auto reloaded = CausalLM::from_pretrained(out);  // the final model, HF format
    EXPECT_TRUE(fs::exists(out + "/tokenizer_config.json")) << c.method;
    if (c.method == "dpo" && c.extra.empty()) EXPECT_NEAR(l[0], std::log(2.0), 1e-5);
  }
}

// kill -9 in the middle of a run, then --resume: the loss trajectory equals
// the uninterrupted run's.
TEST(TrainCli, KillThenResumeReproducesTrajectory) {
  const std::string d = tmpdir("resume");
  Rng r(11);
  std::vector<json> rows;
  auto seq = [&](int lo, int hi) {
    std::vector<int> v(lo + r.below(hi - lo));
    for (auto& x : v) x = static_cast<int>(r.below(320));
    return v;
  };
  for (int i = 0; i < 24; ++i)
    rows.push_back({{"prompt_input_ids", seq(3, 9)}, {"chosen_input_ids", seq(2, 7)}, {"rejected_input_ids", seq(2, 7)}});
  write_jsonl(d + "/pairs.jsonl", rows);
  const std::string args = "train --method dpo --model " + kData + "/models/llama --data " + d +
                           "/pairs.jsonl --max_steps 400 --per_device_train_batch_size 4 --gradient_accumulation_steps 2 "
                           "--learning_rate 5e-4 --lr_scheduler_type cosine --warmup_ratio 0.1 --logging_steps 1 "
                           "--save_steps 20 --save_total_limit 2 --weight_decay 0.01";
  int rc = -1;
  run_prefopt(args + " --output_dir " + d + "/full", &rc);
  ASSERT_EQ(rc, 0);
  auto full = losses(d + "/full/metrics.jsonl");
  ASSERT_EQ(full.size(), 400u);

  const std::string out = d + "/killed";
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = prefopt::testing::prefopt_exe() + " " + args + " --output_dir " + out + " 2>/dev/null";
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
    _exit(127);
  }
  bool killed = false;
  for (int i = 0; i < 6000 && !killed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (fs::exists(out + "/checkpoint-60")) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(killed) << "the run ended before checkpoint-60 appeared";
  ASSERT_TRUE(WIFSIGNALED(st)) << "the run finished before the kill; the test needs a longer run";
  ASSERT_FALSE(fs::exists(out + "/model.safetensors"));  // killed before the end
  // save_total_limit 2 keeps the newest two checkpoints
  int n_ckpt = 0;
  for (auto& e : fs::directory_iterator(out))
    n_ckpt += e.path().filename().string().rfind("checkpoint-", 0) == 0 &&
              e.path().filename().string().find(".tmp") == std::string::npos;
  EXPECT_LE(n_ckpt, 3);
  std::string log = run_prefopt(args + " --output_dir " + out + " --resume", &rc, true);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_NE(log.find("resumed from"), std::string::npos) << log;
  auto resumed = losses(out + "/metrics.jsonl");
  ASSERT_EQ(resumed.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) ASSERT_NEAR(resumed[i], full[i], 1e-6 + 1e-6 * std::abs(full[i])) << "step " << i + 1;
  // and the final weights agree
  auto a = CausalLM::from_pretrained(d + "/full"), b = CausalLM::from_pretrained(out);
  for (size_t i = 0; i < a->named_parameters().size(); ++i)
    EXPECT_TRUE(at::allclose(a->named_parameters()[i].second, b->named_parameters()[i].second, 1e-5, 1e-6))
        << a->named_parameters()[i].first;
}

TEST(TrainCli, ConfigFileFlagsAndErrors) {
  const std::string d = tmpdir("config");
  std::vector<json> rows = {{{"prompt_input_ids", {1, 2, 3}}, {"chosen_input_ids", {4, 5}}, {"rejected_input_ids", {6}}},
                            {{"prompt_input_ids", {7, 8}}, {"chosen_input_ids", {9}}, {"rejected_input_ids", {10, 11}}}};
  write_jsonl(d + "/p.jsonl", rows);
  std::ofstream(d + "/c.toml") << "max_steps = 3\nlearning_rate = 0.01\nlogging_steps = 1\nmax_grad_norm = 0.0\n"
                                  "beta = 0.3\n";
  const std::string base = "train --method dpo --model " + kData + "/models/llama --data " + d + "/p.jsonl ";
  int rc = -1;
  std::string log = run_prefopt(base + "--config " + d + "/c.toml --output_dir " + d + "/o --max_steps 2", &rc, true);
  ASSERT_EQ(rc, 0) << log;
  auto m = read_jsonl(d + "/o/metrics.jsonl");
  ASSERT_EQ(m.size(), 2u);  // the flag overrode the file's max_steps
  // the file's learning_rate with the default linear schedule, no warm-up: 0.01 * (2 - s) / 2
  EXPECT_DOUBLE_EQ(m[0]["learning_rate"].get<double>(), 0.01);
  EXPECT_DOUBLE_EQ(m[1]["learning_rate"].get<double>(), 0.005);
  // unknown TOML key
  std::ofstream(d + "/bad.toml") << "learning_rate = 0.01\nlearnin_rate = 3\n";
  log = run_prefopt(base + "--config " + d + "/bad.toml --output_dir " + d + "/o2", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(log.find("bad.toml:2"), std::string::npos) << log;
  EXPECT_NE(log.find("learnin_rate"), std::string::npos) << log;
  // unknown flag, bad value
  log = run_prefopt(base + "--output_dir " + d + "/o3 --bogus_key 1", &rc, true);
  EXPECT_NE(rc, 0);
  log = run_prefopt(base + "--output_dir " + d + "/o3 --loss_type sigmoidd", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(log.find("sigmoidd"), std::string::npos) << log;
  // --resume with no checkpoint
  log = run_prefopt(base + "--output_dir " + d + "/empty --resume", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(log.find("no checkpoint"), std::string::npos) << log;
  // text rows with a model that has no tokenizer
  write_jsonl(d + "/text.jsonl", {json{{"prompt", "a"}, {"chosen", "b"}, {"rejected", "c"}}});
  log = run_prefopt("train --method dpo --model " + kData + "/models/llama --data " + d + "/text.jsonl --output_dir " +
                        d + "/o4",
                    &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(log.find("text.jsonl:1"), std::string::npos) << log;
  EXPECT_NE(log.find("tokenizer"), std::string::npos) << log;
}
