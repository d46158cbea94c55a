// Training memory and precision options through the Trainer on the tiny
// Llama fixture: DPO with gradient checkpointing gives the same loss and
// gradients as without (full fine-tuning and LoRA with dropout), chunked
// attention the same as eager; --bf16 trains (the loss falls on a tiny
// overfit set) and stays close to fp32; the saved dtype follows torch_dtype;
// the CLI's --device and boolean flags.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/run_cli.h"
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
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kLlama = std::string(PREFOPT_SHARED_DATA) + "/models/llama";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_memory_" + name + "." + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::vector<int> ids(Rng& r, int lo, int hi) {
  std::vector<int> v(lo + r.below(hi - lo));
  for (auto& x : v) x = static_cast<int>(r.below(320));
  return v;
}

std::string write_pairs(const std::string& dir, int n = 8) {
  Rng r(7);
  std::vector<json> rows;
  for (int i = 0; i < n; ++i)
    rows.push_back({{"prompt_input_ids", ids(r, 3, 9)}, {"chosen_input_ids", ids(r, 2, 7)}, {"rejected_input_ids", ids(r, 2, 7)}});
  const std::string p = dir + "/pairs.jsonl";
  write_jsonl(p, rows);
  return p;
}

Dataset load(const std::string& p) { return load_dataset(p, DataKind::Paired, nullptr, nullptr, DataOptions{}, 320); }

TrainConfig dpo_cfg(const std::string& out) {
  TrainConfig c;
  c.method = "dpo";
  c.output_dir = out;
  c.learning_rate = 1e-3;
  c.per_device_train_batch_size = 4;
  c.max_steps = 1;
  c.logging_steps = 1;
  c.save_steps = 0;
  c.lr_scheduler_type = "constant";
  return c;
}

struct Grads {
  double loss;
  std::vector<at::Tensor> g;
};

// One DPO micro-step's loss and the gradients of every trained tensor.
Grads dpo_grads(TrainConfig c, const std::string& data, bool peft) {
  auto p = CausalLM::from_pretrained(kLlama);
  if (peft) {
    c.use_peft = true, c.lora_r = 4, c.lora_alpha = 8, c.lora_dropout = 0.2, c.lora_target_modules = "all-linear";
  }
  Trainer t(c, *p, nullptr, load(data), std::nullopt, kLlama);
  std::vector<at::Tensor> params;
  if (peft) {
    // B starts at zero, which would hide the adapters' effect on the loss
    at::manual_seed(99);
    for (auto& side : p->lora()->B)
      for (auto& b : side)
        if (b.defined()) {
          at::NoGradGuard ng;
          b.normal_(0, 0.05);
        }
    for (auto& [n, x] : p->lora()->named_parameters()) params.push_back(x);
  } else {
    for (auto& [n, x] : p->named_parameters()) params.push_back(x);
  }
  at::manual_seed(123);  // adapter dropout
  MicroStep ms = t.compute({0, 1, 2, 3}, false, true);
  ms.loss.backward();
  Grads out{ms.loss.item<double>(), {}};
  for (auto& x : params) out.g.push_back(x.grad().defined() ? x.grad().clone() : at::zeros_like(x));
  return out;
}

double max_rel(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double s = std::max(1e-12, b[i].abs().max().item<double>());
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / s);
  }
  return worst;
}

}  // namespace

TEST(Memory, DpoCheckpointingAndChunkedAttentionChangeNothingButMemory) {
  const std::string dir = tmpdir("ckpt");
  const std::string data = write_pairs(dir);
  for (bool peft : {false, true}) {
    TrainConfig c = dpo_cfg(dir + "/run");
    c.attention = "eager";
    Grads eager = dpo_grads(c, data, peft);
    c.attention = "chunked";
    Grads chunked = dpo_grads(c, data, peft);
    c.gradient_checkpointing = true;
    Grads ckpt = dpo_grads(c, data, peft);
    ASSERT_EQ(eager.g.size(), ckpt.g.size());
    EXPECT_NEAR(chunked.loss, eager.loss, 1e-6) << "peft " << peft;
    EXPECT_NEAR(ckpt.loss, chunked.loss, 1e-6) << "peft " << peft;
    EXPECT_LE(max_rel(chunked.g, eager.g), 1e-5) << "chunked vs eager, peft " << peft;
    EXPECT_LE(max_rel(ckpt.g, chunked.g), 1e-5) << "checkpointed vs not, peft " << peft;
    double gmax = 0;
    for (auto& g : eager.g) gmax = std::max(gmax, g.abs().max().item<double>());
    EXPECT_GT(gmax, 1e-8) << "peft " << peft;  // the comparison is of something
  }
}

// --bf16: the loss falls on a tiny overfit set and stays within 0.02 of the
// fp32 run's at every step (bf16 keeps 8 bits of mantissa: a relative error of
// ~4e-3 per matmul); the final model is saved in torch_dtype.
TEST(Memory, Bf16TrainsCloseToFp32AndSavesTorchDtype) {
  const std::string dir = tmpdir("bf16");
  const std::string data = write_pairs(dir, 4);
  auto run = [&](bool bf16, const std::string& dtype) {
    TrainConfig c = dpo_cfg(dir + "/run_" + (bf16 ? "bf16" : "fp32") + "_" + dtype);
    c.max_steps = 6, c.learning_rate = 3e-3, c.bf16 = bf16, c.torch_dtype = dtype;
    auto p = CausalLM::from_pretrained(kLlama);
    Trainer t(c, *p, nullptr, load(data), std::nullopt, kLlama);
    auto s = t.train();
    std::vector<double> losses;
    for (auto& row : s.logged) losses.push_back(row.at("loss"));
    EXPECT_EQ(p->dtype(), at::kFloat);  // master weights stay fp32
    return std::make_pair(losses, c.output_dir);
  };
  auto [l32, d32] = run(false, "auto");
  auto [l16, d16] = run(true, "bfloat16");
  ASSERT_EQ(l16.size(), 6u);
  EXPECT_LT(l16.back(), l16.front() - 0.05) << "bf16 loss did not fall";
  for (size_t i = 0; i < l16.size(); ++i) EXPECT_NEAR(l16[i], l32[i], 0.02) << "step " << i + 1;
  // saved dtypes
  io::SafetensorsFile f32(d32 + "/model.safetensors"), f16(d16 + "/model.safetensors");
  EXPECT_EQ(f32.header().tensors[0].dtype, io::StDType::F32);
  EXPECT_EQ(f16.header().tensors[0].dtype, io::StDType::BF16);
  EXPECT_EQ(json::parse(read_file(d16 + "/config.json"))["torch_dtype"], "bfloat16");
  EXPECT_EQ(json::parse(read_file(d32 + "/config.json"))["torch_dtype"], "float32");
  auto back = CausalLM::from_pretrained(d16);  // loads (as fp32)
  EXPECT_EQ(back->num_parameters(), CausalLM::from_pretrained(kLlama)->num_parameters());
}

TEST(Memory, CliDeviceAndBooleanFlags) {
  const std::string dir = tmpdir("cli");
  const std::string data = write_pairs(dir, 4);
  const std::string common = "train --method dpo --model " + kLlama + " --data " + data +
                             " --max_steps 1 --per_device_train_batch_size 2 --save_steps 0 --output_dir " + dir;
  int rc = -1;
  // --key and --key true|false both parse, for every boolean key
  std::string out = run_prefopt(common + "/a --device cpu --gradient_checkpointing --bf16 false", &rc, true);
  EXPECT_EQ(rc, 0) << out;
  out = run_prefopt(common + "/b --device cpu --gradient_checkpointing true --attention chunked --torch_dtype bfloat16", &rc, true);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(read_file(dir + "/b/config.json"))["torch_dtype"], "bfloat16");
  out = run_prefopt(common + "/c --gradient_checkpointing maybe", &rc, true);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("gradient_checkpointing"), std::string::npos) << out;
  out = run_prefopt(common + "/c --attention flash", &rc, true);
  EXPECT_EQ(rc, 2) << out;
  // --device on every command: cpu works, cuda without CUDA and malformed devices are exit 2
  const std::string ids = dir + "/ids.jsonl";
  write_jsonl(ids, {json{{"input_ids", {1, 5, 9, 4}}}});
  out = run_prefopt("logprobs --device cpu --model " + kLlama + " --input " + ids, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out)["token_logprobs"].size(), 3u);
  out = run_prefopt("generate --device cpu --max-new-tokens 3 --model " + kLlama + " --input " + ids, &rc);
  EXPECT_EQ(rc, 0) << out;
  for (const std::string cmd : {"logprobs --model " + kLlama + " --input " + ids,
                                "generate --max-new-tokens 3 --model " + kLlama + " --input " + ids, common + "/d",
                                std::string("demo --quick --output-dir ") + dir + "/demo"}) {
    out = run_prefopt(cmd + " --device cuda:x", &rc, true);
    EXPECT_EQ(rc, 2) << cmd << "\n" << out;
    EXPECT_NE(out.find("malformed device \"cuda:x\""), std::string::npos) << out;
    out = run_prefopt(cmd + " --device tpu", &rc, true);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("unknown device \"tpu\""), std::string::npos) << out;
    if (!at::hasCUDA()) {
      out = run_prefopt(cmd + " --device cuda", &rc, true);
      EXPECT_EQ(rc, 2) << cmd << "\n" << out;
      EXPECT_NE(out.find("CUDA is not available"), std::string::npos) << out;
    }
  }
  EXPECT_FALSE(fs::exists(dir + "/demo/summary.json"));  // the device error came before any work
}
