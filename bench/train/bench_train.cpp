// bench_train: one DPO step (policy forward + backward, frozen-copy reference
// forward) on a Llama-shaped ~34M-parameter model (hidden 384, 6 layers, 6
// heads, 2 KV heads, intermediate 1024, vocab 32000, untied head), 8 pairs of
// seeded random pre-tokenized rows: prompts of 256 tokens, completions of
// 32-96 tokens. Everything goes through the public Trainer API
// (Trainer::compute(idx, false, true) then loss.backward()), configured by
// TrainConfig keys only:
//   shared_chunked  prefix_sharing = true,  logps_full_vocab = false  (prefopt's default)
//   naive_full      prefix_sharing = false, logps_full_vocab = true   (TRL: padded concatenation,
//                                                                      full-vocab log-softmax)
//   naive_chunked   prefix_sharing = false, logps_full_vocab = false  (peak RSS only: isolates the
//                                                                      log-prob head)
// In one run it prints
//   (a) tokens/s shared_chunked vs naive_full, interleaved rounds (ABBA), medians;
//   (b) peak RSS of one step, each variant in its own child process (this
//       binary re-executed with --child), VmHWM of the child;
//   (c) achieved FLOP/s = (6·N·tokens policy + 2·N·tokens reference) / step
//       time over the measured sgemm peak: the best of measure_sgemm_gflops()
//       taken before the rounds and after each (other jobs on the cores only
//       ever lower a measurement, so the best is the peak's estimate);
// and one JSON line {"bench":"dpo-step",...}. Tokens are the pairs' own
// tokens (prompt once + chosen + rejected), the same count for every variant.
// --quick: one timed round instead of three (the warm-up step stays: without it the
// first variant pays the first touch of the heap, which the other then reuses).
#include <ATen/ATen.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/runtime.h"
#include "train/batch.h"
#include "train/data.h"
#include "train/trainer.h"

using namespace prefopt;
using nlohmann::json;

namespace {

constexpr int64_t kVocab = 32000, kHidden = 384, kPairs = 8, kPrompt = 256, kCompMin = 32, kCompMax = 96;

ModelConfig bench_model_config() { return llama_config(kVocab, kHidden, 6, 6, 2, 1024, 2048, /*tie=*/false); }

// n_batches batches of kPairs pre-tokenized pairs, seeded.
Dataset make_data(int64_t n_batches) {
  return synthetic_pairs(SyntheticPairs{n_batches * kPairs, kVocab, kPrompt, kCompMin, kCompMax, 20241}, "bench_train");
}

std::vector<size_t> batch_rows(int64_t b) {
  std::vector<size_t> idx;
  for (int64_t i = 0; i < kPairs; ++i) idx.push_back(static_cast<size_t>(b * kPairs + i));
  return idx;
}

struct Variant {
  const char* name;
  bool prefix_sharing, full_vocab;
};
const Variant kVariants[] = {{"shared_chunked", true, false}, {"naive_full", false, true}, {"naive_chunked", false, false}};
const Variant& variant(const std::string& name) {
  for (auto& v : kVariants)
    if (name == v.name) return v;
  std::fprintf(stderr, "bench_train: unknown variant %s\n", name.c_str());
  std::exit(2);
}

TrainConfig config_for(const Variant& v) {
  TrainConfig c;
  c.method = "dpo";
  c.per_device_train_batch_size = kPairs;
  c.max_steps = 1;
  c.output_dir = "/tmp/prefopt_bench_train";
  c.prefix_sharing = v.prefix_sharing;
  c.logps_full_vocab = v.full_vocab;
  return c;
}

struct Bench {
  std::unique_ptr<CausalLM> policy;
  std::unique_ptr<Trainer> trainer;
};

Bench make_bench(const Variant& v, const Dataset& ds) {
  Bench b;
  b.policy = CausalLM::from_config(bench_model_config(), 7);
  // ref = nullptr: the Trainer makes the frozen copy (DPO needs a reference).
  b.trainer = std::make_unique<Trainer>(config_for(v), *b.policy, nullptr, ds);
  return b;
}

// One training micro-step (forward policy + reference, loss, backward); seconds.
double step(Bench& b, int64_t batch) {
  const double t = now_seconds();
  MicroStep ms = b.trainer->compute(batch_rows(batch), false, true);
  ms.loss.backward();
  const double s = now_seconds() - t;
  at::NoGradGuard g;
  for (auto& [n, p] : b.policy->named_parameters())
    if (p.grad().defined()) p.grad().zero_();
  return s;
}

int child(const std::string& name) {
  const Variant& v = variant(name);
  Dataset ds = make_data(1);
  Bench b = make_bench(v, ds);
  const double before = cpu::status_mb("VmRSS");
  // Reset the high-water mark so the step's own peak is visible too (Linux >= 4.0).
  bool reset = false;
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    reset = std::fputs("5", f) >= 0;
    reset = (std::fclose(f) == 0) && reset;
  }
  const double s = step(b, 0);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%s\n", json{{"variant", name},
                           {"rss_before_step_mb", before},
                           {"step_hwm_mb", reset ? cpu::status_mb("VmHWM") : -1.0},
                           {"peak_rss_mb", ru.ru_maxrss / 1024.0},  // whole process (never reset)
                           {"step_seconds", s}}
                          .dump()
                          .c_str());
  return 0;
}

json run_child(const std::string& name) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  path[n > 0 ? n : 0] = 0;
  std::string cmd = std::string(path) + " --child " + name;
  std::FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, got);
  int rc = pclose(p);
  if (rc != 0 || out.empty()) {
    std::fprintf(stderr, "bench_train: child %s failed (status %d)\n", name.c_str(), rc);
    std::exit(3);
  }
  return json::parse(out.substr(out.rfind('{', out.size() - 2)));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--child" && i + 1 < argc) return child(argv[i + 1]);
    if (a == "--quick") rounds = 1;
    else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench_train [--quick] [--rounds N]\n");
      return 2;
    }
  }
  const double t_start = now_seconds();
  const int64_t n_batches = rounds;  // a different batch per round, the same for both variants
  Dataset ds = make_data(n_batches);
  Bench A = make_bench(variant("shared_chunked"), ds);
  Bench B = make_bench(variant("naive_full"), ds);
  const int64_t N = A.policy->num_parameters();

  // Per batch: the pairs' own tokens, and the packed rows of each layout.
  std::vector<int64_t> pair_tokens(n_batches), shared_tokens(n_batches), scored(n_batches);
  std::vector<int64_t> shared_rows(n_batches), shared_len(n_batches);
  for (int64_t b = 0; b < n_batches; ++b) {
    std::vector<BatchItem> items;
    for (size_t i : batch_rows(b)) {
      const Example& ex = ds.rows[i];
      pair_tokens[b] += ex.tokens();
      for (auto& c : ex.completions) scored[b] += static_cast<int64_t>(c.ids.size());
      items.push_back({&ex.prompt, {&ex.completions[0], &ex.completions[1]}});
    }
    PackedBatch pb = pack_batch(items, true);
    shared_tokens[b] = pb.tokens, shared_rows[b] = pb.rows, shared_len[b] = pb.length;
  }

  step(A, 0), step(B, 0);  // warm-up (first-touch allocations; the heap is kept, see core/cpu.cpp)
  std::vector<double> tps_a, tps_b, ratio, sgemm, sec_a, flops_issue, flops_exec;
  sgemm.push_back(measure_sgemm_gflops(1024, 10));
  const auto& mc = A.policy->config();
  (void)mc;
  // Matmul FLOPs actually needed by the shared_chunked step (forward): the
  // body on every real token (non-embedding, non-head parameters), the head
  // only on scored rows, attention scores and values over the full L x L of
  // each packed row (the masked math path computes them all).
  const int64_t head = kVocab * kHidden, body = N - 2 * head;
  for (int r = 0; r < rounds; ++r) {
    const int64_t b = r % n_batches;
    double sa, sb;
    if (r % 2 == 0) sa = step(A, b), sb = step(B, b);
    else sb = step(B, b), sa = step(A, b);
    sgemm.push_back(measure_sgemm_gflops(1024, 10));
    tps_a.push_back(pair_tokens[b] / sa), tps_b.push_back(pair_tokens[b] / sb), sec_a.push_back(sa);
    ratio.push_back(sb / sa);
    const double T = static_cast<double>(shared_tokens[b]);
    flops_issue.push_back((6.0 * N * T + 2.0 * N * T) / sa);
    const double attn = 6 /*layers*/ * 4.0 * shared_rows[b] * shared_len[b] * shared_len[b] * kHidden;
    const double fwd = 2.0 * body * T + 2.0 * head * scored[b] + attn;
    flops_exec.push_back((3.0 * fwd + fwd) / sa);  // policy forward+backward = 3 forwards, reference 1
    std::fprintf(stderr, "round %d: shared_chunked %.2f s (%.0f tok/s), naive_full %.2f s (%.0f tok/s), sgemm %.1f GFLOP/s\n",
                 r + 1, sa, tps_a.back(), sb, tps_b.back(), sgemm.back());
  }
  const double peak = *std::max_element(sgemm.begin(), sgemm.end()) * 1e9;
  // Free the parent's models before the children run (the heap is kept, but
  // the children are separate processes; this only lowers the machine's load).
  A = Bench{}, B = Bench{};

  std::map<std::string, json> rss;
  for (const char* v : {"shared_chunked", "naive_full", "naive_chunked"}) {
    rss[v] = run_child(v);
    std::fprintf(stderr, "child %s: %s\n", v, rss[v].dump().c_str());
  }
  auto mb = [&](const char* v) { return rss[v]["peak_rss_mb"].get<double>(); };
  auto step_mb = [&](const char* v) {
    return rss[v]["step_hwm_mb"].get<double>() - rss[v]["rss_before_step_mb"].get<double>();
  };

  const double tA = median(tps_a), tB = median(tps_b);
  json a = {{"what", "tokens/s shared_chunked / naive_full (same batches, interleaved rounds, medians)"},
            {"shared_chunked_tokens_per_s", tA},
            {"naive_full_tokens_per_s", tB},
            {"ratio_of_medians", tA / tB},
            {"median_of_round_ratios", median(ratio)},
            {"goal", ">= 1.5"}};
  json b = {{"what", "peak RSS (VmHWM) chunked / full-vocab log-probs, one step in a child process each"},
            {"naive_chunked_peak_rss_mb", mb("naive_chunked")},
            {"naive_full_peak_rss_mb", mb("naive_full")},
            {"shared_chunked_peak_rss_mb", mb("shared_chunked")},
            {"ratio_same_packing", mb("naive_chunked") / mb("naive_full")},
            {"ratio_shared_chunked_vs_naive_full", mb("shared_chunked") / mb("naive_full")},
            {"step_increment_mb", {{"naive_chunked", step_mb("naive_chunked")}, {"naive_full", step_mb("naive_full")},
                                   {"shared_chunked", step_mb("shared_chunked")}}},
            {"goal", "<= 0.5"}};
  json c = {{"what", "achieved FLOP/s / measured sgemm peak (shared_chunked step)"},
            {"formula", "(6*N*tokens + 2*N*tokens) / step seconds, N = all parameters, tokens = packed real tokens"},
            {"achieved_gflops", median(flops_issue) / 1e9},
            {"sgemm_peak_gflops", peak / 1e9},
            {"sgemm_samples_gflops", sgemm},
            {"ratio", median(flops_issue) / peak},
            {"executed_matmul_gflops", median(flops_exec) / 1e9},
            {"executed_ratio", median(flops_exec) / peak},
            {"executed_note", "body on all tokens, head only on scored tokens, attention L x L: the work really done"},
            {"goal", ">= 0.6"}};
  std::printf("%s\n", json{{"bench", "dpo-step-a-throughput"}, {"a", a}}.dump().c_str());
  std::printf("%s\n", json{{"bench", "dpo-step-b-peak-rss"}, {"b", b}}.dump().c_str());
  std::printf("%s\n", json{{"bench", "dpo-step-c-flops"}, {"c", c}}.dump().c_str());
  const double tok_per_step = std::accumulate(pair_tokens.begin(), pair_tokens.end(), 0.0) / n_batches;
  std::printf("%s\n", json{{"bench", "dpo-step"},
                           {"tool", "prefopt"},
                           {"tokens_per_second", tA},
                           {"peak_rss_mb", mb("shared_chunked")},
                           {"params", N},
                           {"batch_pairs", kPairs},
                           {"prompt_tokens", kPrompt},
                           {"completion_tokens", "32-96"},
                           {"tokens_per_step", tok_per_step},
                           {"tokens_counted", "prompt once + chosen + rejected per pair"},
                           {"step_seconds", median(sec_a)},
                           {"reference", "frozen copy, forward included"},
                           {"prefix_sharing", true},
                           {"logps", "chunked"},
                           {"dtype", "float32"},
                           {"device", "cpu"},
                           {"cores", cpu::num_cores()},
                           {"blas_core", cpu::blas_core_name()},
                           {"rounds", rounds},
                           {"baseline_naive_full_tokens_per_second", tB},
                           {"baseline_naive_full_peak_rss_mb", mb("naive_full")}}
                          .dump()
                          .c_str());
  std::fprintf(stderr, "bench_train: %.0f s in all\n", now_seconds() - t_start);
  return 0;
}
