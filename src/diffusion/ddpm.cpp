#include "diffusion/ddpm.h"

#include <ATen/ATen.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "diffusion/world.h"

namespace prefopt::diffusion {

using json = nlohmann::json;

json to_json(const SchedulerConfig& c) {
  return json{{"_class_name", "DDPMScheduler"},
              {"num_train_timesteps", c.num_train_timesteps},
              {"beta_start", c.beta_start},
              {"beta_end", c.beta_end},
              {"beta_schedule", c.beta_schedule},
              {"prediction_type", c.prediction_type},
              {"variance_type", "fixed_small"},
              {"clip_sample", true},
              {"clip_sample_range", 1.0},
              {"timestep_spacing", "trailing"},
              {"steps_offset", 0},
              {"trained_betas", nullptr}};
}

SchedulerConfig scheduler_config_from_json(const json& j, const std::string& where) {
  SchedulerConfig c;
  const char* hint = "write scheduler_config.json with prefopt t2i-pretrain";
  PREFOPT_REQUIRE(j.is_object() && j.contains("num_train_timesteps") && j["num_train_timesteps"].is_number_integer(),
                  where, "num_train_timesteps missing", hint);
  c.num_train_timesteps = j["num_train_timesteps"].get<int>();
  PREFOPT_REQUIRE(c.num_train_timesteps >= 2, where, "num_train_timesteps < 2", hint);
  if (j.contains("beta_start")) c.beta_start = j["beta_start"].get<double>();
  if (j.contains("beta_end")) c.beta_end = j["beta_end"].get<double>();
  if (j.contains("beta_schedule")) c.beta_schedule = j["beta_schedule"].get<std::string>();
  if (j.contains("prediction_type")) c.prediction_type = j["prediction_type"].get<std::string>();
  PREFOPT_REQUIRE(c.beta_schedule == "linear" || c.beta_schedule == "squaredcos_cap_v2", where,
                  "beta_schedule '" + c.beta_schedule + "' unsupported", "use linear or squaredcos_cap_v2");
  PREFOPT_REQUIRE(c.prediction_type == "epsilon", where, "prediction_type '" + c.prediction_type + "' unsupported",
                  "this UNet predicts epsilon");
  return c;
}

Schedule::Schedule(const SchedulerConfig& cfg) : cfg_(cfg) {
  const int T = cfg.num_train_timesteps;
  std::vector<double> betas(static_cast<size_t>(T));
  if (cfg.beta_schedule == "linear") {
    for (int i = 0; i < T; ++i) betas[i] = cfg.beta_start + (cfg.beta_end - cfg.beta_start) * i / (T - 1);
  } else {  // squaredcos_cap_v2 (Nichol & Dhariwal's cosine schedule), as diffusers computes it
    auto abar = [](double u) {
      const double v = std::cos((u + 0.008) / 1.008 * M_PI / 2);
      return v * v;
    };
    for (int i = 0; i < T; ++i) betas[i] = std::min(1 - abar((i + 1.0) / T) / abar(static_cast<double>(i) / T), 0.999);
  }
  abar_.resize(betas.size());
  double prod = 1;
  for (size_t i = 0; i < betas.size(); ++i) abar_[i] = prod *= (1 - betas[i]);
}

at::Tensor Schedule::add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const {
  auto ab = at::tensor(abar_, at::kDouble).index_select(0, t).to(x0.scalar_type()).view({-1, 1, 1, 1});
  return ab.sqrt() * x0 + (1 - ab).sqrt() * noise;
}

std::vector<int64_t> Schedule::ddim_timesteps(int steps) const {
  PREFOPT_REQUIRE(steps >= 1 && steps <= T(), "DDIM", fmt::format("{} steps for {} timesteps", steps, T()),
                  "use 1..num_train_timesteps steps");
  std::vector<int64_t> ts;
  const double ratio = static_cast<double>(T()) / steps;
  for (int i = 0; i < steps; ++i) ts.push_back(static_cast<int64_t>(std::llround(T() - i * ratio)) - 1);
  return ts;
}

at::Tensor ddim_sample(const TinyUNet& model, const Schedule& sched, const at::Tensor& tokens, const at::Tensor& noise,
                       int steps, double guidance) {
  at::NoGradGuard ng;
  const int64_t b = noise.size(0);
  const bool cfg = guidance != 1.0;
  at::Tensor all_tokens = tokens;
  if (cfg) {
    auto empty = at::zeros_like(tokens);  // the all-padding caption
    all_tokens = at::cat({tokens, empty});
  }
  const auto ts = sched.ddim_timesteps(steps);
  const auto& abar = sched.alphas_cumprod();
  auto x = noise.clone();
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t t = ts[i];
    const double a_t = abar[t], a_prev = i + 1 < ts.size() ? abar[ts[i + 1]] : 1.0;
    auto tt = at::full({cfg ? 2 * b : b}, t, at::kLong);
    auto eps = model.forward(cfg ? at::cat({x, x}) : x, tt, all_tokens);
    if (cfg) {
      auto parts = eps.chunk(2, 0);
      eps = parts[1] + guidance * (parts[0] - parts[1]);
    }
    auto x0 = ((x - std::sqrt(1 - a_t) * eps) / std::sqrt(a_t)).clamp(-1, 1);
    eps = (x - std::sqrt(a_t) * x0) / std::sqrt(1 - a_t);  // consistent with the clipped x0
    x = std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev) * eps;
  }
  return x.clamp(-1, 1);
}

}  // namespace prefopt::diffusion
