// prefopt diffusion: training and evaluation on the world.
//   pretrain:  DDPM ε-prediction on rendered (image, caption) pairs, caption
//              dropout for classifier-free guidance, AdamW, EMA weights
//   evaluate:  DDIM + guidance from fixed (caption, start noise) pairs, every
//              sample scored by the checker
//   arms:      from a base, sft_more (the same objective, as control), tdpo,
//              tkto (caption perturbation: one image, t, ε, x_t, two captions)
//              and diffusion_dpo (rendered image vs the render of a perturbed
//              caption, both under the true caption, shared t and ε)
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "diffusion/ddpm.h"
#include "diffusion/perturb.h"
#include "diffusion/unet.h"
#include "diffusion/world.h"

namespace prefopt::diffusion {

// Images (B, 3, H, W) in [-1, 1] from HWC [0, 1] renders, and back.
at::Tensor images_to_tensor(const std::vector<Image>& imgs);
Image tensor_to_image(const at::Tensor& x, int64_t i);
// Token ids (B, kTokens); drop[i] true -> the empty caption.
at::Tensor tokens_tensor(const std::vector<Caption>& caps, const std::vector<bool>& drop = {});

struct PretrainOptions {
  std::string output_dir;
  uint64_t seed = 0;
  int steps = 3000, batch = 128, warmup = 100;
  int stop_after = 0;  // > 0: stop (and save) after this many steps; the schedule still spans `steps`
  double lr = 2e-3, min_lr_ratio = 0.1, ema_decay = 0.999, caption_dropout = 0.1, clip = 1.0;
  int eval_every = 500, eval_n = 128, sample_steps = 20;
  double guidance = 3.0;
  int threads = 1;  // one ATen thread: 2 on 2 busy cores ran 3x slower
  UNetConfig unet;
  SchedulerConfig scheduler;
};
// Trains from scratch and writes output_dir (diffusers layout, EMA weights);
// one metrics line per 50 steps goes to metrics_path when it is not empty.
void pretrain(const PretrainOptions& o, const std::string& metrics_path);

struct EvalSet {
  std::vector<Caption> captions;
  at::Tensor noise;  // (n, 3, H, W), from a portable generator
};
EvalSet make_eval_set(int n, uint64_t seed);

struct EvalResult {
  int n = 0;
  double accuracy = 0, valid_two_objects = 0;
  // Per perturbation type: the fraction of samples the checker accepts for a
  // caption of that type (the mistake of that kind; lower is better).
  std::map<std::string, double> per_perturbation;
  std::map<std::string, double> per_relation;  // accuracy among the pairs of each relation
  std::vector<uint8_t> matched;  // per pair: the checker accepted the sample
  at::Tensor images;  // (n, 3, H, W) in [-1, 1]
};
EvalResult evaluate(const TinyUNet& model, const Schedule& sched, const EvalSet& set, int steps, double guidance,
                    int batch = 256);

// The inputs of a preference pair, 2B rows: the preferred branch first.
struct PairInputs {
  at::Tensor x_t, t, tokens;  // (2B, 3, H, W), (2B), (2B, kTokens)
};
// TDPO / TKTO: one image, one t, one ε, one x_t; only the caption differs.
PairInputs caption_pair_inputs(const Schedule& sched, const at::Tensor& x0, const std::vector<Caption>& pos,
                               const std::vector<Caption>& neg, const at::Tensor& noise, const at::Tensor& t);
// Diffusion-DPO: two images (winner, loser) under one caption, the same t and ε.
PairInputs image_pair_inputs(const Schedule& sched, const at::Tensor& x0_w, const at::Tensor& x0_l,
                             const std::vector<Caption>& caps, const at::Tensor& noise, const at::Tensor& t);

struct ArmOptions {
  std::string name;  // sft_more | tdpo | tkto | diffusion_dpo
  uint64_t seed = 0;
  int steps = 200, batch = 32;  // batch = images; sft_more trains on 2*batch (the same compute)
  double lr = 1e-4, beta = 2000, clip = 1.0, caption_dropout = 0.1;
  double desirable_weight = 1.0, undesirable_weight = 1.0;
  // Preference arms: + sft_weight · (DDPM loss of the matching caption's branch), as RPO adds
  // an NLL term to DPO; it keeps the denoiser from drifting while the margin grows.
  double sft_weight = 0.0;
  // Preference arms draw t from [t_min, T) (0: all timesteps, as Diffusion-DPO); the caption
  // changes the ε-prediction mostly at large t, where the layout is still open.
  int t_min = 0;
};
struct ArmLog {
  std::vector<nlohmann::json> rows;                   // one per logged step
  std::map<std::string, int64_t> perturbations_used;  // per type
  double seconds = 0;
};
// Trains a copy of `base` (the reference stays `base`); returns the policy.
TinyUNet train_arm(const TinyUNet& base, const Schedule& sched, const ArmOptions& o, ArmLog* log);

// A grid of the first rows*cols images (each scaled by `zoom`, 1-pixel gaps), RGB bytes.
std::vector<uint8_t> image_grid(const at::Tensor& images, int rows, int cols, int zoom, int* width, int* height);

}  // namespace prefopt::diffusion
