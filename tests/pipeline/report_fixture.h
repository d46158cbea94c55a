// Test fixture: a demo-like output directory made of synthetic files (no training), shaped like
// what `prefopt demo` writes: summary.json with setup, total seconds, gains and two control arms;
// per-round metrics.jsonl with smooth loss / margins / accuracies curves; passk.json with n.
#pragma once
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "core/fs.h"

namespace prefopt::testing {

struct ReportFixture {
  std::string method = "dpo";
  std::string round1 = "round1";  // the first trained round's name (a plain directory name)
  std::string control = "sft_more";
  bool total_seconds = true;      // the demo writes "seconds"; iterate does not
};

// Writes the fixture's input files into dir (created); returns summary.json as written.
inline nlohmann::json write_report_fixture(const std::string& dir, const ReportFixture& f = {}) {
  using nlohmann::json;
  make_dirs(dir);
  auto round = [](const std::string& name, json pk, double stderr_, int64_t pairs, int64_t steps, double seconds,
                  double greedy) {
    return json{{"name", name},   {"pass_at_k", std::move(pk)}, {"pass_at_1_stderr", stderr_}, {"pairs", pairs},
                {"train_steps", steps}, {"seconds", seconds},     {"greedy_accuracy", greedy}};
  };
  json sft = round("sft", {{"1", 0.0623}, {"2", 0.1146}, {"4", 0.1953}, {"8", 0.3127}}, 0.021, 0, 300, 301.44, 0.05);
  json r1 = round(f.round1, {{"1", 0.0977}, {"2", 0.1671}, {"4", 0.2654}, {"8", 0.375}}, 0.025, 118, 40, 212.06, 0.0547);
  json r2 = round("round2", {{"1", 0.1328}, {"2", 0.2104}, {"4", 0.3129}, {"8", 0.4371}}, 0.028, 109, 40, 240.8, 0.125);
  r1["gain_over_sft"] = {{"pass_at_1", 0.0352}, {"stderr", 0.0141}};
  r2["gain_over_sft"] = {{"pass_at_1", 0.0703}, {"stderr", 0.0188}};
  r1["train_tokens"] = 51234, r2["train_tokens"] = 49876;
  json c1 = round("round1", {{"1", 0.0703}, {"8", 0.3281}}, 0.022, 0, 40, 150.2, 0.05);
  json c2 = round("round2", {{"1", 0.0742}, {"8", 0.3359}}, 0.022, 0, 40, 149.9, 0.05);
  c1["gain_over_sft"] = {{"pass_at_1", 0.0078}, {"stderr", 0.009}};
  c2["gain_over_sft"] = {{"pass_at_1", 0.0117}, {"stderr", 0.0101}};
  c1["train_tokens"] = 51234, c2["train_tokens"] = 49876;
  json control = c2;
  control["name"] = f.control;
  control["rounds"] = json::array({c1, c2});
  json s = {{"seed", 7},
            {"method", f.method},
            {"tools", false},
            {"quick", true},
            {"setup", {{"train_problems", 512}, {"held_out", 64}, {"max_new_tokens", 48}}},
            {"n_samples", 8},
            {"eval_n", 8},
            {"beta", 0.1},
            {"rpo_alpha", 1.0},
            {"rounds", json::array({sft, r1, r2})},
            {"controls", json::array({control})}};
  if (f.total_seconds) s["seconds"] = 754.3;
  atomic_write(dir + "/summary.json", s.dump(2) + "\n");
  // metrics: sft 60 logged steps of loss; each trained round 40 steps of the preference metrics.
  std::string m;
  for (int i = 1; i <= 60; ++i)
    m += json{{"step", 5 * i}, {"loss", 3.2 * std::exp(-i / 18.0) + 0.6 + 0.05 * std::sin(i)}}.dump() + "\n";
  make_dirs(dir + "/sft");
  atomic_write(dir + "/sft/metrics.jsonl", m);
  for (const std::string& name : {f.round1, std::string("round2")}) {
    const double shift = name == "round2" ? 0.15 : 0.0;
    m.clear();
    for (int i = 1; i <= 40; ++i) {
      double t = i / 40.0;
      m += json{{"step", i},
                {"loss", 0.693 - 0.25 * t - shift + 0.02 * std::sin(3.0 * i)},
                {"rewards/margins", 0.9 * t + shift + 0.05 * std::cos(2.0 * i)},
                {"rewards/accuracies", std::min(1.0, 0.5 + 0.35 * t + shift / 2 + 0.04 * std::sin(5.0 * i))}}
               .dump() +
           "\n";
    }
    make_dirs(dir + "/" + name);
    atomic_write(dir + "/" + name + "/metrics.jsonl", m);
  }
  atomic_write(dir + "/sft/passk.json", R"({"n": 8, "pass_at_k": {"1": 0.0623}})");
  return s;
}

}  // namespace prefopt::testing
