// prefopt demo / iterate / compare-runs: flags over pipeline/demo.h,
// pipeline/iterate.h and pipeline/report.h.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "cli/bool_flag.h"
#include "cli/commands.h"
#include "core/error.h"
#include "dist/dist.h"
#include "dist/launch.h"
#include "model/device.h"
#include "pipeline/demo.h"
#include "pipeline/iterate.h"
#include "pipeline/report.h"

namespace prefopt::cli {

// Flags: every multi-word flag takes both spellings, dashes (--eval-n) and
// TRL's underscores (--eval_n, --learning_rate); the recipe is the library's
// (pipeline/demo.h, pipeline/iterate.h), this file only parses flags.
void register_pipeline(CLI::App& app) {
  auto a = std::make_shared<pipeline::DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "The verifiable preference-learning loop on a built-in task: SFT on scarce "
                                         "worked solutions, then rounds of sample -> grade -> pairs -> train -> pass@k "
                                         "on answer-only prompts");
  cmd->add_option("--output-dir,--output_dir", a->output_dir, "where models, metrics, pairs, summary.json and report.md go");
  cmd->add_option("--method", a->method, "dpo | kto | bco | tpo | orpo | simpo | cpo | rft")
      ->check(CLI::IsMember({"dpo", "kto", "bco", "tpo", "orpo", "simpo", "cpo", "rft"}));
  cmd->add_option("--seed", a->seed, "seed of the task, the model, the data order and the sampling");
  add_bool_flag(cmd, "--controls", a->controls, "also run the controls sft_more and rft from the same SFT model");
  cmd->add_option("--rounds", a->rounds, "rounds after SFT (default 3; --quick 2)");
  cmd->add_option("--sft-from,--sft_from", a->sft_from, "reuse DIR/sft of an earlier demo with the same set-up");
  cmd->add_option("--sft-steps,--sft_steps", a->sft_steps, "SFT steps");
  cmd->add_option("--gold", a->gold, "problems with a worked solution (SFT)");
  cmd->add_option("--answer-only-sft,--answer_only_sft", a->answer_only_sft, "answer-only demonstrations in SFT");
  cmd->add_option("--pool", a->pool, "answer-only prompts for the rounds");
  cmd->add_option("--prompts-per-round,--prompts_per_round", a->prompts_per_round, "a fresh slice of the pool per round");
  cmd->add_option("--held-out,--held_out", a->held_out, "held-out problems for pass@k");
  cmd->add_option("--n,--n-samples,--n_samples", a->n_samples, "samples per training prompt in each round");
  cmd->add_option("--eval-n,--eval_n", a->eval_n, "samples per held-out problem for pass@k (k = 1, 2, 4, ..., eval-n)");
  cmd->add_option("--max-pairs,--max_pairs", a->max_pairs, "pairs per prompt: up to K correct x incorrect (0 = all)");
  cmd->add_option("--truncate-rejected,--truncate_rejected", a->truncate_rejected,
                  "1: score each rejected sample only up to its first token that differs from the chosen one; 0: all");
  cmd->add_option("--learning-rate,--learning_rate", a->learning_rate, "learning rate of the rounds");
  cmd->add_option("--epochs,--num_train_epochs", a->epochs, "epochs over each round's pairs");
  cmd->add_option("--beta", a->beta, "preference beta");
  cmd->add_option("--rpo-alpha,--rpo_alpha", a->rpo_alpha, "NLL-on-chosen weight for dpo (0 = plain DPO)");
  add_bool_flag(cmd, "--quick", a->quick, "a short smoke run (~1 minute)");
  add_bool_flag(cmd, "--resume", a->resume,
                "continue an interrupted run in --output-dir (same settings): committed steps are kept, the rest redone");
  cmd->add_option("--device", a->device, kDeviceHelp);
  cmd->add_option("--tools", a->tools, "python: worked solutions and samples call Python (the tool-call loop, "
                                       "code in the sandbox); trains M-DPO / M-KTO");
  add_bool_flag(cmd, "--mask-tool-observations,--mask_tool_observations", a->mask_tool_observations,
                  "true (M-DPO: tool outputs never count in the loss) or false (for the comparison)");
  auto launch = std::make_shared<std::pair<std::string, std::string>>();  // --nproc_per_node, --master_port
  cmd->add_option("--nproc_per_node", launch->first, "start N local ranks (data parallel, torchrun's contract)");
  cmd->add_option("--master_port", launch->second, "with --nproc_per_node: the rendezvous port (default: a free one)");
  cmd->callback([a, launch] {
    dist::run_local_ranks_if_asked(launch->first, launch->second);
    auto summary = pipeline::run_demo(*a);
    if (!dist::is_main()) return;  // under torchrun rank 0 reports
    std::printf("%sReport: %s/report.md\n", pipeline::demo_printout(summary).c_str(), a->output_dir.c_str());
  });

  auto cmp = std::make_shared<std::pair<std::string, std::vector<std::string>>>();
  auto* cr = app.add_subcommand("compare-runs", "Markdown table (stdout) and an SVG of pass@k curves comparing demo "
                                                "or iterate output directories: LABEL=DIR ...");
  cr->add_option("--svg", cmp->first, "where the pass@k picture goes")->required();
  cr->add_option("runs", cmp->second, "LABEL=DIR pairs")->required();
  cr->callback([cmp] {
    std::vector<std::pair<std::string, std::string>> ld;
    for (auto& r : cmp->second) {
      auto eq = r.find('=');
      if (eq == std::string::npos || eq == 0) fail(r, "expected LABEL=DIR", "e.g. dpo=runs/dpo");
      ld.push_back({r.substr(0, eq), r.substr(eq + 1)});
    }
    std::printf("%s", pipeline::compare_runs_markdown(ld, cmp->first).c_str());
  });

  auto ia = std::make_shared<std::pair<std::string, bool>>("", false);
  auto idev = std::make_shared<std::string>();
  auto* it = app.add_subcommand("iterate", "The loop for your own HF model and prompts (GSM8K / MATH JSONL): rounds of "
                                           "sample -> grade -> pairs -> train -> pass@k, resumable per round");
  it->add_option("--config", ia->first, "a TOML file (see docs/experiments.md)")->required();
  add_bool_flag(it, "--resume", ia->second,
                "continue an interrupted run in output_dir (same settings; rounds may change): committed steps are "
                "kept, the rest redone");
  it->add_option("--device", *idev, std::string(kDeviceHelp) + "; overrides the file's device key");
  auto ilaunch = std::make_shared<std::pair<std::string, std::string>>();  // --nproc_per_node, --master_port
  it->add_option("--nproc_per_node", ilaunch->first, "start N local ranks (data parallel, torchrun's contract)");
  it->add_option("--master_port", ilaunch->second, "with --nproc_per_node: the rendezvous port (default: a free one)");
  it->callback([ia, idev, ilaunch] {
    auto cfg = pipeline::IterateConfig::from_toml(ia->first);
    if (!idev->empty()) cfg.device = *idev;
    (void)parse_device(cfg.device);
    dist::run_local_ranks_if_asked(ilaunch->first, ilaunch->second);
    auto s = pipeline::run_iterate(cfg, ia->second);
    if (!dist::is_main()) return;
    const auto& r = s["rounds"];
    std::printf("prefopt iterate: pass@1 %.3f (base) -> %.3f (%s); report %s/report.md\n",
                r.front()["pass_at_k"]["1"].get<double>(), r.back()["pass_at_k"]["1"].get<double>(),
                r.back()["name"].get<std::string>().c_str(), cfg.loop.out_dir.c_str());
  });
}

}  // namespace prefopt::cli
