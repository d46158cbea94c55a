// prefopt train --method dpo|kto|bco|tpo|orpo|cpo|simpo|sft --model DIR --data FILE.jsonl
//               [--ref-model DIR] [--config F.toml] [--tokenizer PATH] [--resume [CHECKPOINT]]
//               [--KEY VALUE ...]   (every config key, spelled as in TRL: --learning_rate 1e-3)
// Flags override the TOML file. The final model lands in output_dir in HF
// format; metrics in output_dir/metrics.jsonl; checkpoints in
// output_dir/checkpoint-<step>. See docs/training.md.
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include <map>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "dist/dist.h"
#include "dist/launch.h"
#include "model/device.h"
#include "train/run.h"
#include "train/trainer.h"

namespace prefopt::cli {
namespace {

struct TrainArgs {
  std::string model, ref_model, adapter, data, config, tokenizer, resume, device = "auto";
  std::string nproc_per_node, master_port;  // the local launcher (dist/launch.h)
  std::map<std::string, std::string> flags;  // key -> raw value
  std::map<std::string, CLI::Option*> opts;
  CLI::Option* resume_opt = nullptr;
};

void run_train(TrainArgs& a) {
  TrainConfig cfg;
  if (!a.config.empty()) load_config_toml(cfg, a.config);
  for (auto& [k, opt] : a.opts)
    if (opt->count() > 0) set_config_value(cfg, k, a.flags[k], "--" + k);
  cfg.validate();
  if (a.model.empty()) fail("--model", "missing", "pass the model directory (config.json + model.safetensors)");
  if (a.data.empty()) fail("--data", "missing", "pass a JSONL file in TRL's format");
  dist::run_local_ranks_if_asked(a.nproc_per_node, a.master_port);  // N > 1: this process only launches
  // Under torchrun: join the process group first; ranks > 0 print warnings and errors only; LOCAL_RANK picks
  // the GPU when the device is auto or cuda without an index.
  dist::init(static_cast<double>(cfg.ddp_timeout));
  if (!dist::is_main()) set_log_level(LogLevel::Quiet);
  at::Device dev = parse_device(a.device);
  if (dev.is_cuda() && dist::active() && (a.device == "auto" || a.device == "cuda"))
    dev = parse_device("cuda:" + std::to_string(dist::local_rank()));

  TrainPaths paths{a.model, a.data, a.ref_model, a.adapter, a.tokenizer,
                   a.resume_opt && a.resume_opt->count() > 0, a.resume};
  TrainSummary s = run_training(cfg, paths, dev);
  if (!dist::is_main()) return;
  if (dist::active()) {
    const double per = s.steps > 0 ? 1e3 / static_cast<double>(s.steps) : 0.0;
    info("train: {} ranks; {:.1f} ms per step; {:.3f} s in collectives ({:.1f} ms per step), of which the gradients' "
         "all-reduce after backward {:.1f} ms per step", dist::world_size(), s.seconds * per, s.comm_seconds,
         s.comm_seconds * per, s.grad_sync_seconds * per);
  }
  std::printf("prefopt train %s: %lld steps, loss %.4f -> %.4f, %.0f tokens/s; model: %s, metrics: %s/metrics.jsonl\n",
              cfg.method.c_str(), static_cast<long long>(s.steps), s.first_loss, s.last_loss, s.tokens_per_second,
              cfg.output_dir.c_str(), cfg.output_dir.c_str());
}

}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train with a preference objective (DPO family, KTO, BCO, TPO, ORPO, CPO, SimPO) or SFT");
  cmd->add_option("--model", a->model, "policy model directory (HF: config.json + safetensors)")->required();
  cmd->add_option("--data", a->data, "training JSONL in TRL's format")->required();
  cmd->add_option("--ref-model", a->ref_model, "reference model directory (default: a frozen copy of --model)");
  cmd->add_option("--adapter", a->adapter, "a LoRA adapter directory (PEFT format) to continue training (implies --use_peft)");
  cmd->add_option("--config", a->config, "a TOML file of config keys");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer path (default: the model directory)");
  cmd->add_option("--device", a->device, kDeviceHelp);
  a->resume_opt = cmd->add_option("--resume", a->resume, "continue from CHECKPOINT (default: the newest in output_dir)")
                      ->expected(0, 1);
  cmd->add_option("--nproc_per_node", a->nproc_per_node,
                  "start N local ranks of this command (data parallel, torchrun's contract, without Python); "
                  "torchrun remains the launcher for several machines");
  cmd->add_option("--master_port", a->master_port, "with --nproc_per_node: the rendezvous port (default: a free one)");
  TrainConfig defaults;
  for (auto& k : config_keys(defaults)) {
    std::string def;
    switch (k.kind) {
      case 'i': def = std::to_string(*static_cast<int64_t*>(k.ptr)); break;
      case 'd': def = fmt::format("{}", *static_cast<double*>(k.ptr)); break;
      case 'b': def = *static_cast<bool*>(k.ptr) ? "true" : "false"; break;
      default: def = *static_cast<std::string*>(k.ptr);
    }
    auto* o = cmd->add_option("--" + k.name, a->flags[k.name],
                              k.help + (k.prefopt_only ? " [prefopt]" : "") + (def.empty() ? "" : " (default " + def + ")"));
    if (k.kind == 'b') o->expected(0, 1);
    a->opts[k.name] = o;
  }
  cmd->callback([a] { run_train(*a); });
}

}  // namespace prefopt::cli
