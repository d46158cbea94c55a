// prefopt t2i-pretrain / t2i-demo: flags over diffusion/t2i.h and
// diffusion/demo.h (text-to-image diffusion on the checkable world).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "diffusion/demo.h"
#include "diffusion/t2i.h"

namespace prefopt::cli {

void register_t2i(CLI::App& app) {
  auto p = std::make_shared<diffusion::PretrainOptions>();
  p->output_dir = "assets/t2i_base";
  auto metrics = std::make_shared<std::string>();
  auto* pre = app.add_subcommand("t2i-pretrain", "Train the base text-to-image denoiser (DDPM, ε-prediction) on "
                                                 "rendered (image, caption) pairs; writes diffusers' layout");
  pre->add_option("--output-dir,--output_dir", p->output_dir, "the model directory (default assets/t2i_base)");
  pre->add_option("--metrics", *metrics, "metrics JSONL (default OUTPUT_DIR.metrics.jsonl)");
  pre->add_option("--seed", p->seed, "seed of the weights, the scenes and the noise");
  pre->add_option("--steps", p->steps, "optimizer steps");
  pre->add_option("--stop-after,--stop_after", p->stop_after,
                  "stop and save after N steps (the learning-rate schedule still spans --steps)");
  pre->add_option("--batch", p->batch, "images a step");
  pre->add_option("--learning-rate,--learning_rate", p->lr, "peak learning rate (warm-up, then cosine)");
  pre->add_option("--channels", p->unet.base_channels, "UNet base channels (C at 16x16, 2C below)");
  pre->add_option("--cross-attention,--cross_attention", p->unet.cross_attention_dim,
                  "width of cross-attention to the caption tokens (0: FiLM only)");
  pre->add_option("--eval-every,--eval_every", p->eval_every, "probe the checker accuracy every N steps (0: never)");
  pre->add_option("--eval-n,--eval_n", p->eval_n, "probe samples");
  pre->add_option("--threads", p->threads, "ATen threads");
  pre->callback([p, metrics] {
    diffusion::pretrain(*p, metrics->empty() ? p->output_dir + ".metrics.jsonl" : *metrics);
  });

  auto d = std::make_shared<diffusion::T2IDemoOptions>();
  auto* demo = app.add_subcommand("t2i-demo", "From the base model: arms sft_more (control), tdpo, tkto and "
                                              "diffusion_dpo, each scored by the exact checker on the same fixed "
                                              "(caption, noise) pairs; summary.json, PNG grids, report.md");
  demo->add_option("--output-dir,--output_dir", d->output_dir, "where summary.json, report.md and grids go");
  demo->add_option("--base", d->base, "the base model directory (default: assets/t2i_base of the source tree)");
  demo->add_option("--seed", d->seed, "seed of the arms' data, noise and perturbations");
  demo->add_flag("--quick", d->quick, "a short smoke run (under a minute)");
  demo->add_option("--steps", d->steps, "optimizer steps per arm");
  demo->add_option("--batch", d->batch, "images per step (sft_more: twice as many)");
  demo->add_option("--learning-rate,--learning_rate", d->lr, "learning rate of the arms");
  demo->add_option("--beta", d->beta, "β of tdpo, diffusion_dpo and the β of tkto");
  demo->add_option("--beta-sweep,--beta_sweep", d->beta_sweep, "extra β values for tdpo");
  demo->add_option("--eval-n,--eval_n", d->eval_n, "fixed (caption, noise) pairs scored per arm");
  demo->add_option("--sample-steps,--sample_steps", d->sample_steps, "DDIM steps");
  demo->add_option("--guidance", d->guidance, "classifier-free guidance weight");
  demo->add_option("--sft-weight,--sft_weight", d->sft_weight,
                   "weight of the DDPM loss on the matching caption added to the preference arms");
  demo->add_option("--t-min,--t_min", d->t_min, "preference arms draw the timestep from [t_min, T) (default 0)");
  demo->add_option("--arms", d->arms, "run only these arms (base sft_more tdpo tkto diffusion_dpo tdpo_betaB ...)");
  demo->add_option("--threads", d->threads, "ATen threads");
  demo->callback([d] {
    const auto s = diffusion::run_t2i_demo(*d);
    std::printf("%sReport: %s/report.md\n", diffusion::t2i_demo_printout(s).c_str(), d->output_dir.c_str());
  });
}

}  // namespace prefopt::cli
