#include "train/config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "core/error.h"
#include "data/dataset.h"
#include "model/lora.h"

namespace prefopt {

std::vector<ConfigKey> config_keys(TrainConfig& c) {
  return {
      {"method", 's', "dpo | kto | bco | tpo | orpo | cpo | simpo | sft", true, &c.method},
      {"output_dir", 's', "where checkpoints, metrics.jsonl and the final HF model go", false, &c.output_dir},
      {"learning_rate", 'd', "AdamW peak learning rate", false, &c.learning_rate},
      {"per_device_train_batch_size", 'i', "examples per micro-batch", false, &c.per_device_train_batch_size},
      {"per_device_eval_batch_size", 'i', "examples per eval / reference batch", false, &c.per_device_eval_batch_size},
      {"gradient_accumulation_steps", 'i', "micro-batches per optimizer step", false, &c.gradient_accumulation_steps},
      {"max_steps", 'i', "optimizer steps; -1 = num_train_epochs", false, &c.max_steps},
      {"num_train_epochs", 'd', "epochs when max_steps is -1", false, &c.num_train_epochs},
      {"lr_scheduler_type", 's', "constant | constant_with_warmup | linear | cosine", false, &c.lr_scheduler_type},
      {"warmup_ratio", 'd', "warm-up as a fraction of the steps", false, &c.warmup_ratio},
      {"warmup_steps", 'i', "warm-up steps (overrides warmup_ratio when > 0)", false, &c.warmup_steps},
      {"weight_decay", 'd', "AdamW decoupled weight decay (not on biases and norms)", false, &c.weight_decay},
      {"adam_beta1", 'd', "AdamW beta1", false, &c.adam_beta1},
      {"adam_beta2", 'd', "AdamW beta2", false, &c.adam_beta2},
      {"adam_epsilon", 'd', "AdamW epsilon", false, &c.adam_epsilon},
      {"max_grad_norm", 'd', "clip the global gradient norm; 0 disables", false, &c.max_grad_norm},
      {"logging_steps", 'i', "write metrics every N steps", false, &c.logging_steps},
      {"save_steps", 'i', "checkpoint every N steps; 0 = only the final model", false, &c.save_steps},
      {"save_total_limit", 'i', "keep at most N checkpoints; 0 = all", false, &c.save_total_limit},
      {"eval_steps", 'i', "evaluate every N steps; 0 = at the end", false, &c.eval_steps},
      {"seed", 'i', "seed of the data order and any sampling", false, &c.seed},
      {"max_length", 'i', "prompt + completion tokens", false, &c.max_length},
      {"max_prompt_length", 'i', "prompt tokens (truncated per truncation_mode)", false, &c.max_prompt_length},
      {"max_completion_length", 'i', "completion tokens; 0 = max_length - prompt", false, &c.max_completion_length},
      {"truncation_mode", 's', "keep_end | keep_start (for prompts)", false, &c.truncation_mode},
      {"beta", 'd', "the preference temperature (ORPO: lambda)", false, &c.beta},
      {"loss_type", 's', "DPO: sigmoid robust ipo hinge exo_pair nca_pair bco_pair sppo_hard aot aot_pair apo_zero "
                         "apo_down discopop; KTO: kto apo_zero_unpaired; CPO: sigmoid hinge ipo simpo; TPO: sigmoid hinge",
       false, &c.loss_type},
      {"label_smoothing", 'd', "cDPO / robust label noise", false, &c.label_smoothing},
      {"rpo_alpha", 'd', "RPO: weight of the NLL on chosen; 0 = off", false, &c.rpo_alpha},
      {"reference_free", 'b', "DPO against a uniform reference", false, &c.reference_free},
      {"precompute_ref_log_probs", 'b', "reference log-probs computed once and cached beside the data", false,
       &c.precompute_ref_log_probs},
      {"sync_ref_model", 'b', "TR-DPO: ref <- alpha*policy + (1-alpha)*ref", false, &c.sync_ref_model},
      {"ref_model_mixup_alpha", 'd', "TR-DPO alpha", false, &c.ref_model_mixup_alpha},
      {"ref_model_sync_steps", 'i', "TR-DPO period", false, &c.ref_model_sync_steps},
      {"f_divergence_type", 's', "reverse_kl | js_divergence | alpha_divergence", false, &c.f_divergence_type},
      {"f_alpha_divergence_coef", 'd', "alpha of the alpha divergence", false, &c.f_alpha_divergence_coef},
      {"discopop_tau", 'd', "DiscoPOP temperature", false, &c.discopop_tau},
      {"desirable_weight", 'd', "KTO weight of desirable rows", false, &c.desirable_weight},
      {"undesirable_weight", 'd', "KTO weight of undesirable rows", false, &c.undesirable_weight},
      {"min_density_ratio", 'd', "BCO UDM lower clamp", false, &c.min_density_ratio},
      {"max_density_ratio", 'd', "BCO UDM upper clamp", false, &c.max_density_ratio},
      {"bco_udm", 'b', "BCO underlying-distribution matching", true, &c.bco_udm},
      {"cpo_alpha", 'd', "CPO/SimPO NLL weight; default 1 (cpo), 0 (simpo)", false, &c.cpo_alpha},
      {"simpo_gamma", 'd', "SimPO target margin", false, &c.simpo_gamma},
      {"tpo_alpha", 'd', "Triple-PO weight of the gold NLL", false, &c.tpo_alpha},
      {"use_peft", 'b', "train LoRA adapters (PEFT format) instead of every weight; the reference is the "
                        "model with its adapters off", false, &c.use_peft},
      {"lora_r", 'i', "LoRA rank", false, &c.lora_r},
      {"lora_alpha", 'd', "LoRA alpha (the adapter is scaled by lora_alpha / lora_r)", false, &c.lora_alpha},
      {"lora_dropout", 'd', "dropout on the adapters' input while training", false, &c.lora_dropout},
      {"lora_target_modules", 's', "all-linear, or a comma-separated list of q_proj k_proj v_proj o_proj gate_proj "
                                   "up_proj down_proj (PEFT's default for Llama-family models: q_proj,v_proj)", false,
       &c.lora_target_modules},
      {"gradient_checkpointing", 'b', "recompute each decoder layer in backward instead of keeping its activations "
                                      "(less memory, about one more forward)", false, &c.gradient_checkpointing},
      {"attention", 's', "auto | eager | chunked: chunked keeps no [B,H,T,S] scores for backward (less memory); "
                         "auto = eager (faster on the measured CPU)", true, &c.attention},
      {"bf16", 'b', "bf16 matmuls (autocast) with fp32 master weights, AdamW moments, log-softmax and losses", false,
       &c.bf16},
      {"torch_dtype", 's', "dtype of the saved final model: auto (float32) | float32 | bfloat16 | float16", false,
       &c.torch_dtype},
      {"prefix_sharing", 'b', "score chosen and rejected in one packed row sharing the prompt", true, &c.prefix_sharing},
      {"mask_tool_observations", 'b', "tool turns never count in the loss (M-DPO / M-KTO)", true,
       &c.mask_tool_observations},
      {"chat_template", 's', "chatml | llama3 | llama2 | mistral | gemma | phi3 | plain; default: the model's", true,
       &c.chat_template},
      {"eval_data", 's', "a JSONL evaluation file", true, &c.eval_data},
      {"eval_split", 'd', "hold out this fraction of the data for evaluation", true, &c.eval_split},
      {"logps_chunk_rows", 'i', "rows per chunk of the log-prob head; 0 = auto (a ~64 MB logits block)", true, &c.logps_chunk_rows},
      {"logps_full_vocab", 'b', "benchmark baseline only: log-softmax over the full [rows, vocab] logits at once (as TRL) "
                                "instead of the chunked head; much more memory", true, &c.logps_full_vocab},
      {"threads", 'i', "ATen intra-op threads; 0 = prefopt's recommendation", true, &c.threads},
      {"ddp_timeout", 'i', "seconds a collective waits for the other ranks before failing (torchrun runs)", false,
       &c.ddp_timeout},
      {"ddp_bucket_cap_mb", 'd', "MiB of gradients per all-reduce bucket (data parallel runs)", false,
       &c.ddp_bucket_cap_mb},
      {"ddp_overlap", 'b', "all-reduce each gradient bucket during the last backward pass of a step, as soon as its "
                           "gradients are final (false: all after the backward pass; the same result)", true,
       &c.ddp_overlap},
  };
}

namespace {
[[noreturn]] void bad(const std::string& origin, const std::string& key, const std::string& what) {
  fail(origin, "key \"" + key + "\": " + what, "see `prefopt train --help` or docs/training.md");
}
}  // namespace

void set_config_value(TrainConfig& c, const std::string& key, const std::string& value, const std::string& origin) {
  for (auto& k : config_keys(c)) {
    if (k.name != key) continue;
    try {
      size_t used = 0;
      switch (k.kind) {
        case 'i': {
          long long v = std::stoll(value, &used);
          if (used != value.size()) throw std::invalid_argument(value);
          *static_cast<int64_t*>(k.ptr) = v;
          return;
        }
        case 'd': {
          double v = std::stod(value, &used);
          if (used != value.size()) throw std::invalid_argument(value);
          *static_cast<double*>(k.ptr) = v;
          return;
        }
        case 'b':
          if (value == "true" || value == "True" || value == "1" || value.empty()) *static_cast<bool*>(k.ptr) = true;
          else if (value == "false" || value == "False" || value == "0") *static_cast<bool*>(k.ptr) = false;
          else throw std::invalid_argument(value);
          return;
        default: *static_cast<std::string*>(k.ptr) = value; return;
      }
    } catch (const std::logic_error&) {
      bad(origin, key, fmt::format("expected {}, found \"{}\"",
                                   k.kind == 'i' ? "an integer" : k.kind == 'd' ? "a number" : "true or false", value));
    }
  }
  bad(origin, key, "unknown key");
}

void load_config_toml(TrainConfig& c, const std::string& path, const std::string& section) {
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
    if (!section.empty()) {
      if (!tbl.contains(section)) return;
      if (!tbl[section].is_table()) fail(path, "\"" + section + "\" must be a table", "write it as [" + section + "]");
      toml::table sub = *tbl[section].as_table();
      tbl = std::move(sub);
    }
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    fail(fmt::format("{}:{}:{}", path, s.begin.line, s.begin.column), std::string(e.description()),
         "fix the TOML syntax");
  }
  auto keys = config_keys(c);
  for (auto&& [name, node] : tbl) {
    std::string key(name.str());
    const ConfigKey* k = nullptr;
    for (auto& kk : keys)
      if (kk.name == key) k = &kk;
    const std::string origin = fmt::format("{}:{}", path, node.source().begin.line);
    if (!k) bad(origin, key, "unknown key (keys are TRL's names: beta, loss_type, learning_rate, ...)");
    switch (k->kind) {
      case 'i':
        if (!node.is_integer()) bad(origin, key, "expected an integer");
        *static_cast<int64_t*>(k->ptr) = node.as_integer()->get();
        break;
      case 'd':
        if (node.is_integer()) *static_cast<double*>(k->ptr) = static_cast<double>(node.as_integer()->get());
        else if (node.is_floating_point()) *static_cast<double*>(k->ptr) = node.as_floating_point()->get();
        else bad(origin, key, "expected a number");
        break;
      case 'b':
        if (!node.is_boolean()) bad(origin, key, "expected true or false");
        *static_cast<bool*>(k->ptr) = node.as_boolean()->get();
        break;
      default:
        if (!node.is_string()) bad(origin, key, "expected a string");
        *static_cast<std::string*>(k->ptr) = node.as_string()->get();
    }
  }
}

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  TrainConfig copy = *this;
  for (auto& k : config_keys(copy)) {
    switch (k.kind) {
      case 'i': j[k.name] = *static_cast<int64_t*>(k.ptr); break;
      case 'd': j[k.name] = *static_cast<double*>(k.ptr); break;
      case 'b': j[k.name] = *static_cast<bool*>(k.ptr); break;
      default: j[k.name] = *static_cast<std::string*>(k.ptr);
    }
  }
  j["loss_type"] = resolved_loss_type();
  j["cpo_alpha"] = resolved_cpo_alpha();
  return j;
}

namespace {
struct MethodName {
  Method m;
  const char* name;
};
constexpr MethodName kMethods[] = {{Method::Dpo, "dpo"},   {Method::Kto, "kto"}, {Method::Bco, "bco"},
                                   {Method::Tpo, "tpo"},   {Method::Orpo, "orpo"}, {Method::Cpo, "cpo"},
                                   {Method::Simpo, "simpo"}, {Method::Sft, "sft"}};

const MethodName* find_method(const std::string& s) {
  for (auto& e : kMethods)
    if (s == e.name) return &e;
  return nullptr;
}
}  // namespace

Method parse_method(const std::string& s) {
  if (auto* e = find_method(s)) return e->m;
  fail("config", "key \"method\": must be one of dpo, kto, bco, tpo, orpo, cpo, simpo, sft (found \"" + s + "\")",
       "see docs/training.md");
}

const char* to_string(Method m) {
  for (auto& e : kMethods)
    if (e.m == m) return e.name;
  return "?";
}

DataKind data_kind(Method m) {
  switch (m) {
    case Method::Dpo:
    case Method::Cpo:
    case Method::Simpo:
    case Method::Orpo: return DataKind::Paired;
    case Method::Tpo: return DataKind::Triple;
    case Method::Kto:
    case Method::Bco: return DataKind::Unpaired;
    case Method::Sft: return DataKind::Sft;
  }
  return DataKind::Paired;
}

Method TrainConfig::method_kind() const {
  if (parsed_method_ != method) method_kind_ = parse_method(method), parsed_method_ = method;
  return method_kind_;
}

// The helpers below are also called on configs not yet validated (to_json of
// any config): an unknown method gets the defaults of none of the special cases.
std::string TrainConfig::resolved_loss_type() const {
  if (!loss_type.empty()) return loss_type;
  if (method == "kto") return "kto";
  if (method == "simpo") return "simpo";
  return "sigmoid";
}

double TrainConfig::resolved_cpo_alpha() const {
  if (cpo_alpha >= 0) return cpo_alpha;
  return method == "simpo" ? 0.0 : 1.0;
}

bool TrainConfig::needs_reference() const {
  const MethodName* e = find_method(method);
  if (!e) return false;
  if (e->m == Method::Dpo) return !reference_free;
  return e->m == Method::Kto || e->m == Method::Bco;
}

void TrainConfig::validate() const {
  auto need = [](bool ok, const char* key, const std::string& what) {
    if (!ok) fail("config", fmt::format("key \"{}\": {}", key, what), "see docs/training.md");
  };
  (void)method_kind();  // parses and caches `method`; an unknown one is an Error naming the key
  need(learning_rate >= 0 && std::isfinite(learning_rate), "learning_rate", "must be a finite number >= 0");
  need(per_device_train_batch_size >= 1, "per_device_train_batch_size", "must be >= 1");
  need(per_device_eval_batch_size >= 1, "per_device_eval_batch_size", "must be >= 1");
  need(gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1");
  need(max_steps > 0 || num_train_epochs > 0, "max_steps", "set max_steps > 0 or num_train_epochs > 0");
  need(lr_scheduler_type == "constant" || lr_scheduler_type == "constant_with_warmup" ||
           lr_scheduler_type == "linear" || lr_scheduler_type == "cosine",
       "lr_scheduler_type", "must be constant, constant_with_warmup, linear or cosine");
  need(warmup_ratio >= 0 && warmup_ratio <= 1, "warmup_ratio", "must be in [0, 1]");
  need(max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0 disables clipping)");
  need(logging_steps >= 1, "logging_steps", "must be >= 1");
  need(save_steps >= 0, "save_steps", "must be >= 0");
  need(beta > 0 || method == "sft", "beta", "must be > 0");
  need(label_smoothing >= 0 && label_smoothing < 0.5, "label_smoothing", "must be in [0, 0.5)");
  need(eval_split >= 0 && eval_split < 1, "eval_split", "must be in [0, 1)");
  need(ref_model_mixup_alpha >= 0 && ref_model_mixup_alpha <= 1, "ref_model_mixup_alpha", "must be in [0, 1]");
  need(ref_model_sync_steps >= 1, "ref_model_sync_steps", "must be >= 1");
  need(!(precompute_ref_log_probs && sync_ref_model), "sync_ref_model",
       "TR-DPO updates the reference, so its log-probs cannot be precomputed");
  need(ddp_bucket_cap_mb > 0 && std::isfinite(ddp_bucket_cap_mb), "ddp_bucket_cap_mb", "must be a number > 0");
  need(logps_chunk_rows >= 0, "logps_chunk_rows", "must be >= 0 (0 = auto)");
  need(lora_r >= 1, "lora_r", "must be >= 1");
  need(lora_alpha > 0 && std::isfinite(lora_alpha), "lora_alpha", "must be a finite number > 0");
  need(lora_dropout >= 0 && lora_dropout < 1, "lora_dropout", "must be in [0, 1)");
  need(!(use_peft && sync_ref_model), "sync_ref_model",
       "cannot be combined with use_peft: the reference is the model with its adapters off");
  if (use_peft) (void)parse_lora_targets(lora_target_modules, "config: key \"lora_target_modules\"");
  need(attention == "auto" || attention == "eager" || attention == "chunked", "attention", "auto, eager or chunked");
  need(torch_dtype == "auto" || torch_dtype == "float32" || torch_dtype == "bfloat16" || torch_dtype == "float16",
       "torch_dtype", "auto, float32, bfloat16 or float16");
  need(truncation_mode == "keep_end" || truncation_mode == "keep_start", "truncation_mode", "keep_end or keep_start");
}

}  // namespace prefopt
