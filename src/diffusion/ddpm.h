// prefopt diffusion: the DDPM noise schedule (diffusers' DDPMScheduler
// fields), the forward process, and DDIM sampling (η = 0, "trailing"
// timestep spacing, x0 clipped to [-1, 1]) with classifier-free guidance.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include "diffusion/unet.h"

namespace prefopt::diffusion {

struct SchedulerConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "squaredcos_cap_v2";  // or "linear"
  std::string prediction_type = "epsilon";
};
nlohmann::json to_json(const SchedulerConfig& c);  // diffusers' scheduler_config.json fields
SchedulerConfig scheduler_config_from_json(const nlohmann::json& j, const std::string& where);

class Schedule {
 public:
  explicit Schedule(const SchedulerConfig& cfg);
  const SchedulerConfig& config() const { return cfg_; }
  int T() const { return cfg_.num_train_timesteps; }
  const std::vector<double>& alphas_cumprod() const { return abar_; }
  // x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε, per example (t: (B) int64).
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;
  // The DDIM timesteps for `steps` steps, "trailing": T−1, ..., descending.
  std::vector<int64_t> ddim_timesteps(int steps) const;

 private:
  SchedulerConfig cfg_;
  std::vector<double> abar_;
};

// DDIM sampling from the start noise x_T (B, 3, H, W): ε = ε_u + w (ε_c − ε_u),
// conditional and unconditional halves in one batch (w = 1: conditional only,
// one batch). Returns x0 in [-1, 1]. No gradient.
at::Tensor ddim_sample(const TinyUNet& model, const Schedule& sched, const at::Tensor& tokens,
                       const at::Tensor& noise, int steps, double guidance);

}  // namespace prefopt::diffusion
