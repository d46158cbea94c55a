#include "train/run.h"

#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/dataset.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/data.h"

namespace prefopt {

bool has_tokenizer_files(const std::string& dir) {
  return file_exists(dir + "/tokenizer.json") || file_exists(dir + "/tokenizer.model") ||
         (file_exists(dir + "/vocab.json") && file_exists(dir + "/merges.txt"));
}

TrainSummary run_training(TrainConfig cfg, const TrainPaths& p, const at::Device& dev, const TrainNames& names) {
  if (!p.adapter.empty() && !cfg.use_peft) {
    info("train: adapter {} given: training it (use_peft on)", p.adapter);
    cfg.use_peft = true;
  }
  if (cfg.use_peft && !p.ref_model.empty())
    fail(names.ref_model, "cannot be combined with " + names.use_peft,
         "under use_peft the reference is the model with its adapters off; drop " + names.ref_model);
  auto policy = CausalLM::from_pretrained(p.model, dev);
  std::unique_ptr<CausalLM> ref;
  if (!p.ref_model.empty()) ref = CausalLM::from_pretrained(p.ref_model, dev);
  if (!p.adapter.empty()) {
    load_lora(*policy, p.adapter);
    info("train: continuing adapter {} (r {}, lora_alpha {}, {}); its adapter_config.json overrides the lora_* keys",
         p.adapter, policy->lora()->cfg.r, policy->lora()->cfg.lora_alpha,
         fmt::format("{}", fmt::join(policy->lora()->cfg.target_modules, ",")));
    policy->lora()->cfg.base_model_name_or_path = p.model;
  } else if (cfg.use_peft) {
    attach_lora(*policy, peft_config(cfg, p.model), static_cast<uint64_t>(cfg.seed));
  }

  std::optional<Tokenizer> tok;
  const std::string tok_src = p.tokenizer.empty() ? p.model : p.tokenizer;
  if (!p.tokenizer.empty() || has_tokenizer_files(p.model)) tok = Tokenizer::load(tok_src);
  std::optional<ChatTemplate> tmpl;
  if (!cfg.chat_template.empty()) {
    tmpl = ChatTemplate::from_arg(cfg.chat_template);
  } else {
    const std::string tc = (is_directory(tok_src) ? tok_src : p.model) + "/tokenizer_config.json";
    if (file_exists(tc)) {
      try {
        tmpl = ChatTemplate::detect(tc);
      } catch (const Error&) {
        // text and pre-tokenized rows need no template; conversational rows say what to pass
      }
    }
  }
  const DataOptions dopt = data_options(cfg);
  const DataKind kind = data_kind(cfg.method_kind());
  const int64_t V = policy->config().vocab_size;
  Dataset train = load_dataset(p.data, kind, tok ? &*tok : nullptr, tmpl ? &*tmpl : nullptr, dopt, V);
  std::optional<Dataset> eval;
  if (!cfg.eval_data.empty())
    eval = load_dataset(cfg.eval_data, kind, tok ? &*tok : nullptr, tmpl ? &*tmpl : nullptr, dopt, V);
  else if (cfg.eval_split > 0)
    eval = split_eval(train, cfg.eval_split, cfg.seed);
  std::string resume;
  if (p.resume) {
    resume = p.resume_from.empty() ? latest_checkpoint(cfg.output_dir) : p.resume_from;
    if (resume.empty())
      fail(names.resume, "no checkpoint-<step> directory in " + cfg.output_dir,
           "train without " + names.resume + ", or pass the checkpoint directory");
  }
  Trainer trainer(cfg, *policy, std::move(ref), std::move(train), std::move(eval),
                  tok && is_directory(tok_src) ? tok_src : p.model);
  return trainer.train(resume);
}

}  // namespace prefopt
