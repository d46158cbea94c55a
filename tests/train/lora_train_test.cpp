// Training LoRA adapters (use_peft): only adapter tensors move, the first DPO
// loss is ln 2, the reference is the model with its adapters off (checked
// against the merged model trained-against an explicit base reference), every
// objective runs, PEFT's files land in output_dir and checkpoints, resume
// repeats the uninterrupted run; the CLI's --adapter, merge-lora and errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/config.h"
#include "train/trainer.h"

using namespace prefopt;
using prefopt::testing::run_prefopt;
namespace fs = std::filesystem;

namespace {

const std::string kLlama = std::string(PREFOPT_SHARED_DATA) + "/models/llama";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_lora_train_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::vector<int> ids(Rng& r, int lo, int hi) {
  std::vector<int> v(lo + r.below(hi - lo));
  for (auto& x : v) x = static_cast<int>(r.below(320));
  return v;
}

std::string write_rows(const std::string& dir, DataKind k, int n = 8) {
  Rng r(5);
  std::vector<json> rows;
  for (int i = 0; i < n; ++i) {
    json j = {{"prompt_input_ids", ids(r, 3, 8)}};
    if (k == DataKind::Unpaired) {
      j["completion_input_ids"] = ids(r, 2, 6), j["label"] = i % 2 == 0;
    } else if (k == DataKind::Sft) {
      j["completion_input_ids"] = ids(r, 2, 6);
    } else {
      j["chosen_input_ids"] = ids(r, 2, 6), j["rejected_input_ids"] = ids(r, 2, 6);
      if (k == DataKind::Triple) j["reference_input_ids"] = ids(r, 2, 6);
    }
    rows.push_back(j);
  }
  std::string p = dir + "/rows.jsonl";
  write_jsonl(p, rows);
  return p;
}

Dataset load(const std::string& p, DataKind k) { return load_dataset(p, k, nullptr, nullptr, DataOptions{}, 320); }

TrainConfig peft_cfg(const std::string& out, const std::string& method = "dpo") {
  TrainConfig c;
  c.method = method;
  c.output_dir = out;
  c.learning_rate = 5e-3;
  c.per_device_train_batch_size = 4;
  c.max_steps = 2;
  c.logging_steps = 1;
  c.save_steps = 0;
  c.lr_scheduler_type = "constant";
  c.use_peft = true;
  c.lora_r = 4;
  c.lora_alpha = 8;
  c.lora_dropout = 0.0;
  c.lora_target_modules = "all-linear";
  return c;
}

bool base_unchanged(CausalLM& a, CausalLM& b) {
  for (size_t i = 0; i < a.named_parameters().size(); ++i)
    if (!at::equal(a.named_parameters()[i].second, b.named_parameters()[i].second)) return false;
  return true;
}

}  // namespace

TEST(LoraTrain, DpoStepMovesOnlyAdaptersAndStartsAtLn2) {
  const std::string out = tmpdir("dpo");
  const std::string data = write_rows(out, DataKind::Paired);
  auto p = CausalLM::from_pretrained(kLlama);
  auto base = CausalLM::from_pretrained(kLlama);
  TrainConfig c = peft_cfg(out + "/run");
  c.lora_dropout = 0.1;
  Trainer t(c, *p, nullptr, load(data, DataKind::Paired), std::nullopt, kLlama);
  ASSERT_TRUE(p->lora());
  std::vector<at::Tensor> a0;
  for (auto& [k, v] : p->lora()->named_parameters()) a0.push_back(v.detach().clone());
  auto s = t.train();
  EXPECT_NEAR(s.first_loss, std::log(2.0), 1e-6);
  EXPECT_TRUE(base_unchanged(*p, *base));  // base weights bit-identical
  for (auto& [n, w] : p->named_parameters()) EXPECT_FALSE(w.requires_grad()) << n;
  auto after = p->lora()->named_parameters();
  ASSERT_EQ(after.size(), a0.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_FALSE(at::equal(after[i].second, a0[i])) << after[i].first;
  // PEFT's output files, no full model
  EXPECT_TRUE(file_exists(out + "/run/adapter_config.json"));
  EXPECT_TRUE(file_exists(out + "/run/adapter_model.safetensors"));
  EXPECT_FALSE(file_exists(out + "/run/model.safetensors"));
  io::SafetensorsFile f(out + "/run/adapter_model.safetensors");
  EXPECT_EQ(f.header().tensors.size(), 2u * 7 * 2);
  EXPECT_TRUE(f.has("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight"));
}

// The reference under use_peft is the base model: the peft trainer's rewards
// equal those of a full trainer whose policy is the merged model and whose
// reference is an explicit copy of the base.
TEST(LoraTrain, ReferenceIsTheModelWithAdaptersOff) {
  const std::string out = tmpdir("ref");
  const std::string data = write_rows(out, DataKind::Paired);
  auto p = CausalLM::from_pretrained(kLlama);
  TrainConfig c = peft_cfg(out + "/run");
  Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
  t.train();
  MicroStep a = t.compute({0, 1, 2, 3}, false, false);
  ASSERT_GT(std::abs(a.metrics["rewards/chosen"]), 1e-4);  // the adapters moved the policy

  auto merged = CausalLM::from_pretrained(kLlama);
  {
    const std::string ad = out + "/run";
    load_lora(*merged, ad);
    merge_lora(*merged);
  }
  TrainConfig c2 = c;
  c2.use_peft = false;
  c2.output_dir = out + "/full";
  Trainer t2(c2, *merged, CausalLM::from_pretrained(kLlama), load(data, DataKind::Paired));
  MicroStep b = t2.compute({0, 1, 2, 3}, false, false);
  for (const char* k : {"rewards/chosen", "rewards/rejected", "logps/chosen", "loss"})
    EXPECT_NEAR(a.metrics[k], b.metrics[k], 1e-4) << k;
}

TEST(LoraTrain, EveryObjectiveTrainsOnlyAdapters) {
  struct M {
    const char* method;
    DataKind kind;
  };
  for (M m : {M{"dpo", DataKind::Paired}, M{"kto", DataKind::Unpaired}, M{"bco", DataKind::Unpaired},
              M{"tpo", DataKind::Triple}, M{"orpo", DataKind::Paired}, M{"cpo", DataKind::Paired},
              M{"simpo", DataKind::Paired}, M{"sft", DataKind::Sft}}) {
    const std::string out = tmpdir(std::string("obj_") + m.method);
    const std::string data = write_rows(out, m.kind);
    auto p = CausalLM::from_pretrained(kLlama);
    auto base = CausalLM::from_pretrained(kLlama);
    TrainConfig c = peft_cfg(out + "/run", m.method);
    Trainer t(c, *p, nullptr, load(data, m.kind));
    auto s = t.train();
    EXPECT_TRUE(std::isfinite(s.last_loss)) << m.method;
    EXPECT_TRUE(base_unchanged(*p, *base)) << m.method;
    double bmax = 0;
    for (auto& mods : p->lora()->B)
      for (auto& b : mods)
        if (b.defined()) bmax = std::max(bmax, b.abs().max().item<double>());
    EXPECT_GT(bmax, 0) << m.method << ": the adapters did not move";
    if (std::string(m.method) == "kto") {
      EXPECT_NEAR(s.first_loss, 0.5, 1e-6);  // 1 - sigmoid(0): policy == reference
    }
  }
}

TEST(LoraTrain, ResumeRepeatsTheUninterruptedRun) {
  const std::string out = tmpdir("resume");
  const std::string data = write_rows(out, DataKind::Paired);
  TrainConfig c = peft_cfg(out + "/a");
  c.lora_dropout = 0.2;
  c.max_steps = 3;
  c.save_steps = 1;
  auto p1 = CausalLM::from_pretrained(kLlama);
  Trainer t1(c, *p1, nullptr, load(data, DataKind::Paired));
  t1.train();
  ASSERT_TRUE(file_exists(out + "/a/checkpoint-1/adapter_model.safetensors"));
  EXPECT_FALSE(file_exists(out + "/a/checkpoint-1/model.safetensors"));
  auto p2 = CausalLM::from_pretrained(kLlama);
  Trainer t2(c, *p2, nullptr, load(data, DataKind::Paired));
  t2.train(out + "/a/checkpoint-1");
  auto x = p1->lora()->named_parameters(), y = p2->lora()->named_parameters();
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_LT((x[i].second - y[i].second).abs().max().item<double>(), 1e-6) << x[i].first;
}

// The cached reference log-probs (computed with the adapters off) train the
// same adapters as the live adapters-off reference.
TEST(LoraTrain, PrecomputedReferenceMatchesLive) {
  const std::string out = tmpdir("precompute");
  const std::string data = write_rows(out, DataKind::Paired);
  auto run = [&](bool pre) {
    TrainConfig c = peft_cfg(out + (pre ? "/pre" : "/live"));
    c.precompute_ref_log_probs = pre;
    auto p = CausalLM::from_pretrained(kLlama);
    Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
    t.train();
    return p;
  };
  auto a = run(false), b = run(true);
  auto x = a->lora()->named_parameters(), y = b->lora()->named_parameters();
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_LT((x[i].second - y[i].second).abs().max().item<double>(), 1e-6) << x[i].first;
}

// A loaded adapter is trained further (not replaced by a fresh one); the
// full-training path refuses a model that carries one.
TEST(LoraTrain, ContinuesALoadedAdapter) {
  const std::string out = tmpdir("continue");
  const std::string data = write_rows(out, DataKind::Paired);
  {
    auto p = CausalLM::from_pretrained(kLlama);
    Trainer t(peft_cfg(out + "/first"), *p, nullptr, load(data, DataKind::Paired));
    t.train();
  }
  auto p = CausalLM::from_pretrained(kLlama);
  load_lora(*p, out + "/first");
  auto loaded = p->lora()->named_parameters()[1].second.detach().clone();  // a B: not zero after training
  ASSERT_GT(loaded.abs().max().item<double>(), 0);
  Trainer t(peft_cfg(out + "/second"), *p, nullptr, load(data, DataKind::Paired));
  auto s = t.train();
  EXPECT_GT(std::abs(s.first_loss - std::log(2.0)), 1e-4);  // starts from the trained adapter
  EXPECT_FALSE(at::equal(p->lora()->named_parameters()[1].second, loaded));
  TrainConfig full = peft_cfg(out + "/full");
  full.use_peft = false;
  EXPECT_THROW(Trainer(full, *p, nullptr, load(data, DataKind::Paired)), Error);
}

TEST(LoraTrain, ConfigErrors) {
  TrainConfig c = peft_cfg("x");
  c.lora_target_modules = "q_proj,embed_tokens";
  EXPECT_THROW(c.validate(), Error);
  c = peft_cfg("x");
  c.sync_ref_model = true;
  EXPECT_THROW(c.validate(), Error);
  c = peft_cfg("x");
  c.lora_r = 0;
  EXPECT_THROW(c.validate(), Error);
  TrainConfig d;
  EXPECT_EQ(d.lora_r, 16);
  EXPECT_EQ(d.lora_alpha, 32);
  EXPECT_EQ(d.lora_dropout, 0.05);
  EXPECT_EQ(d.lora_target_modules, "q_proj,v_proj");
}

// The CLI: train --use_peft, logprobs --adapter == merge-lora + logprobs, bad adapter -> exit 2.
TEST(LoraCli, TrainLogprobsMerge) {
  const std::string out = tmpdir("cli");
  const std::string data = write_rows(out, DataKind::Paired);
  int rc = -1;
  run_prefopt("train --quiet --method dpo --model " + kLlama + " --data " + data + " --output_dir " + out +
                  "/run --use_peft --lora_r 4 --lora_target_modules all-linear --max_steps 3 --learning_rate 0.01 "
                  "--per_device_train_batch_size 4 --save_steps 0",
              &rc);
  ASSERT_EQ(rc, 0);
  auto cfg = nlohmann::json::parse(read_file(out + "/run/adapter_config.json"));
  EXPECT_EQ(cfg["base_model_name_or_path"], kLlama);
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 32.0);
  write_jsonl(out + "/ids.jsonl", {json{{"input_ids", {1, 5, 17, 100, 3, 250, 41, 7}}}, json{{"input_ids", {1, 9, 2, 64}}}});
  auto lines = [](const std::string& s) {
    std::vector<nlohmann::json> v;
    size_t a = 0, b;
    while ((b = s.find('\n', a)) != std::string::npos) v.push_back(nlohmann::json::parse(s.substr(a, b - a))), a = b + 1;
    return v;
  };
  auto with = lines(run_prefopt("logprobs --model " + kLlama + " --adapter " + out + "/run --input " + out + "/ids.jsonl", &rc));
  ASSERT_EQ(rc, 0);
  auto base = lines(run_prefopt("logprobs --model " + kLlama + " --input " + out + "/ids.jsonl", &rc));
  run_prefopt("merge-lora --model " + kLlama + " --adapter " + out + "/run --output " + out + "/merged", &rc);
  ASSERT_EQ(rc, 0);
  auto merged = lines(run_prefopt("logprobs --model " + out + "/merged --input " + out + "/ids.jsonl", &rc));
  ASSERT_EQ(with.size(), 2u);
  ASSERT_EQ(merged.size(), 2u);
  double diff = 0, moved = 0;
  for (size_t i = 0; i < 2; ++i)
    for (size_t t = 0; t < with[i]["token_logprobs"].size(); ++t) {
      diff = std::max(diff, std::abs(with[i]["token_logprobs"][t].get<double>() - merged[i]["token_logprobs"][t].get<double>()));
      moved = std::max(moved, std::abs(with[i]["token_logprobs"][t].get<double>() - base[i]["token_logprobs"][t].get<double>()));
    }
  EXPECT_LE(diff, 1e-5);
  EXPECT_GT(moved, 1e-4);
  // generate --adapter runs on the adapter (greedy ids)
  run_prefopt("generate --model " + kLlama + " --adapter " + out + "/run --input " + out + "/ids.jsonl --max-new-tokens 3", &rc);
  EXPECT_EQ(rc, 0);
  // a damaged adapter: exit 2 with the file named
  auto j = cfg;
  j["r"] = 8;
  atomic_write(out + "/run/adapter_config.json", j.dump());
  std::string err = run_prefopt("logprobs --model " + kLlama + " --adapter " + out + "/run --input " + out + "/ids.jsonl",
                                &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find("adapter_model.safetensors"), std::string::npos) << err;
  // --ref-model with --use_peft is refused
  run_prefopt("train --quiet --method dpo --model " + kLlama + " --ref-model " + kLlama + " --data " + data +
                  " --output_dir " + out + "/x --use_peft --max_steps 1",
              &rc);
  EXPECT_EQ(rc, 2);
}
