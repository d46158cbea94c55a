// prefopt bench dpo-step [--use_peft [true|false]] [--gradient_checkpointing [true|false]]
//                        [--bf16 [true|false]] [--attention auto|eager|chunked] [--steps N] [--device D]
// One DPO training step (policy forward + backward, reference forward,
// prefix sharing and the chunked log-prob head as in training) on the shapes
// of bench/train/bench_train.cpp: a Llama-shaped ~34M-parameter model (hidden
// 384, 6 layers, 6 heads, 2 KV heads, intermediate 1024, vocab 32000, untied
// head), 8 seeded random pre-tokenized pairs, prompts of 256 tokens,
// completions of 32-96. The reference is a frozen copy of the policy (full
// fine-tuning) or the policy with its adapters off (use_peft: LoRA all-linear,
// r 16, alpha 32). No optimizer step (as bench_train). Prints one JSON line:
// tokens_per_second (the pairs' own tokens: prompt once + chosen + rejected,
// over the median step time of --steps timed steps after one warm-up step),
// peak_rss_mb (VmHWM of this process: run one setting per process), and the
// settings. bench/dpo_step_compare.sh runs the settings and the PyTorch peer.
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/device.h"
#include "model/model.h"
#include "train/data.h"
#include "train/trainer.h"

namespace prefopt::cli {
namespace {

constexpr int64_t kVocab = 32000, kHidden = 384, kPairs = 8, kPrompt = 256, kCompMin = 32, kCompMax = 96;

struct BenchArgs {
  std::string use_peft = "false", checkpointing = "false", bf16 = "false", attention = "auto", device = "cpu";
  int steps = 3;
};

bool parse_bool(const std::string& v, const std::string& key) {
  if (v.empty() || v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0") return false;
  fail(key, "expected true or false, found \"" + v + "\"", "write " + key + " or " + key + " true|false");
}

// The bench's pairs: seeded, the same rows as bench_train's first batch.
Dataset make_pairs() {
  return synthetic_pairs(SyntheticPairs{kPairs, kVocab, kPrompt, kCompMin, kCompMax, 20241}, "bench_dpo_step");
}

void run_dpo_step(const BenchArgs& a) {
  const bool peft = parse_bool(a.use_peft, "--use_peft"), ckpt = parse_bool(a.checkpointing, "--gradient_checkpointing"),
             bf16 = parse_bool(a.bf16, "--bf16");
  PREFOPT_REQUIRE(a.steps >= 1, "--steps", "must be >= 1", "e.g. --steps 3");
  const at::Device dev = parse_device(a.device);
  TrainConfig c;
  c.method = "dpo";
  c.per_device_train_batch_size = kPairs;
  c.max_steps = 1;
  c.output_dir = "/tmp/prefopt_bench_dpo_step_" + std::to_string(getpid());
  c.use_peft = peft, c.lora_r = 16, c.lora_alpha = 32, c.lora_target_modules = "all-linear";
  c.gradient_checkpointing = ckpt, c.bf16 = bf16, c.attention = a.attention;
  c.validate();
  Dataset ds = make_pairs();
  int64_t tokens = 0;
  nlohmann::json lengths = nlohmann::json::array();  // [chosen, rejected] per pair (the peer runs the same)
  for (auto& ex : ds.rows) {
    tokens += static_cast<int64_t>(ex.prompt.size());
    for (auto& comp : ex.completions) tokens += static_cast<int64_t>(comp.ids.size());
    lengths.push_back({ex.completions[0].ids.size(), ex.completions[1].ids.size()});
  }
  auto policy = CausalLM::from_config(llama_config(kVocab, kHidden, 6, 6, 2, 1024, 2048, /*tie=*/false), 7, dev);
  Trainer trainer(c, *policy, nullptr, std::move(ds));
  std::vector<size_t> idx(kPairs);
  for (int64_t i = 0; i < kPairs; ++i) idx[i] = static_cast<size_t>(i);
  auto step = [&] {
    const double t = now_seconds();
    MicroStep ms = trainer.compute(idx, false, true);
    ms.loss.backward();
    if (dev.is_cuda()) ms.loss.item<double>();  // waits for the device
    const double s = now_seconds() - t;
    at::NoGradGuard g;
    auto zero = [](at::Tensor& p) {
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
    };
    for (auto& [n, p] : policy->named_parameters()) zero(p);
    if (policy->lora())
      for (auto& [n, p] : policy->lora()->named_parameters()) zero(p);
    return s;
  };
  step();  // warm-up: first touch of the heap, oneDNN / BLAS set-up
  std::vector<double> times;
  for (int i = 0; i < a.steps; ++i) times.push_back(step());
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  nlohmann::json out = {{"bench", "dpo-step"},
                        {"impl", "prefopt"},
                        {"tokens_per_second", tokens / med},
                        {"step_seconds", med},
                        {"peak_rss_mb", cpu::status_mb("VmHWM")},
                        {"tokens", tokens},
                        {"use_peft", peft},
                        {"gradient_checkpointing", ckpt},
                        {"bf16", bf16},
                        {"attention", a.attention},
                        {"device", dev.str()},
                        {"steps", a.steps},
                        {"parameters", policy->num_parameters()},
                        {"completion_lengths", lengths}};
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks that print one JSON line");
  bench->require_subcommand(1);
  auto a = std::make_shared<BenchArgs>();
  auto* d = bench->add_subcommand("dpo-step", "One DPO step (34M Llama, 8 pairs, 256-token prompts, 32-96-token "
                                              "completions, reference included): tokens/s and peak RSS");
  d->add_option("--use_peft,--use-peft", a->use_peft, "LoRA all-linear r 16 (reference = adapters off)")->expected(0, 1);
  d->add_option("--gradient_checkpointing,--gradient-checkpointing", a->checkpointing,
                "recompute each decoder layer in backward")
      ->expected(0, 1);
  d->add_option("--bf16", a->bf16, "bf16 matmuls (autocast), fp32 master weights")->expected(0, 1);
  d->add_option("--attention", a->attention, "auto | eager | chunked")->check(CLI::IsMember({"auto", "eager", "chunked"}));
  d->add_option("--steps", a->steps, "timed steps after one warm-up step (median)");
  d->add_option("--device", a->device, kDeviceHelp);
  d->callback([a] { run_dpo_step(*a); });
}

}  // namespace prefopt::cli
