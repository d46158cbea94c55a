// prefopt diffusion: the t2i demo. From a base model, each arm (sft_more as
// the control, tdpo, tkto, diffusion_dpo, tdpo at further β values) is
// trained with the same steps and images, then scored by the checker on the
// same fixed (caption, start noise) pairs. Writes summary.json, report.md,
// PNG sample grids and each arm's model in diffusers' layout.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace prefopt::diffusion {

struct T2IDemoOptions {
  std::string output_dir = "t2i_demo_out";
  std::string base;  // "" -> assets/t2i_base beside the program's source tree
  uint64_t seed = 0;
  bool quick = false;
  // Negative / empty: the default of the quick or full setting.
  int steps = -1, batch = -1, eval_n = -1, sample_steps = -1, threads = 1;
  double lr = -1, beta = -1, guidance = -1;
  std::vector<double> beta_sweep;
  int t_min = 0;                // preference arms draw t from [t_min, T)
  double sft_weight = -1;       // λ of the DDPM loss on the matching branch added to the preference arms
  std::vector<std::string> arms;  // empty: every arm; else only these names (base, sft_more, tdpo, ...)
  uint64_t eval_seed = 20251129;  // the fixed (caption, noise) pairs: the same for every arm and seed
};

struct T2IArmSummary {
  std::string name;
  double accuracy = 0, stderr_ = 0, valid_two_objects = 0, beta = 0, seconds = 0;
  int n = 0;
  std::map<std::string, double> per_perturbation, per_relation;
  std::map<std::string, int64_t> perturbations_used;
  std::vector<uint8_t> matched;  // per fixed pair
  // Against sft_more on the same pairs: the accuracy difference and its paired standard error
  // (sd of the per-pair differences / √n); unset (NaN) for sft_more itself or without it.
  double gain_over_sft_more = std::nan(""), gain_stderr = std::nan("");
};

struct T2IDemoSummary {
  std::vector<T2IArmSummary> arms;
  double checker_ground_truth_accuracy = 0;
  nlohmann::json json;  // what summary.json holds
};

// Finds the base directory: `given`, else assets/t2i_base relative to the
// working directory or to the program (build/prefopt -> ../assets/t2i_base).
std::string find_t2i_base(const std::string& given);
T2IDemoSummary run_t2i_demo(const T2IDemoOptions& o);
std::string t2i_demo_printout(const T2IDemoSummary& s);

}  // namespace prefopt::diffusion
