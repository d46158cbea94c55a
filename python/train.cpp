// prefopt.train: the training run of `prefopt train` (src/cli/cmd_train.cpp)
// from Python: the same set-up (config keys, policy / reference / LoRA
// adapter, tokenizer and chat template, datasets) and the same Trainer, with
// TRL's config keys as keyword arguments. Returns the run's summary as a dict.
// The GIL is released while it trains.
#include <ATen/ATen.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/dataset.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/trainer.h"

namespace prefopt::py_bind {

namespace {

using json = nlohmann::json;

bool has_tokenizer_files(const std::string& dir) {
  return file_exists(dir + "/tokenizer.json") || file_exists(dir + "/tokenizer.model") ||
         (file_exists(dir + "/vocab.json") && file_exists(dir + "/merges.txt"));
}

// A keyword argument as the text a --KEY VALUE flag would carry.
std::optional<std::string> flag_text(py::handle v, const std::string& where) {
  if (v.is_none()) return std::nullopt;  // TRL's None: keep prefopt's default
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>() ? "true" : "false";
  if (py::isinstance<py::int_>(v)) return py::str(v).cast<std::string>();
  if (py::isinstance<py::float_>(v)) return py::repr(v).cast<std::string>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (is_path_like(v)) return to_path(v, where);
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {  // lora_target_modules=["q_proj", "v_proj"]
    std::string s;
    for (auto x : v) {
      if (!py::isinstance<py::str>(x)) fail(where, "a list value must hold only str", "e.g. [\"q_proj\", \"v_proj\"]");
      s += (s.empty() ? "" : ",") + x.cast<std::string>();
    }
    return s;
  }
  fail(where, "expected a bool, int, float, str or a list of str", "the value of a TRL config key");
}

py::object train(const std::string& method, py::object model_arg, py::object data_arg, py::object output_dir_arg,
                 py::object ref_model_arg, py::object adapter_arg, py::object tokenizer_arg, py::object config_arg,
                 const std::string& device, py::object resume_arg, py::kwargs trl_keys) {
  TrainConfig cfg;
  if (!config_arg.is_none()) load_config_toml(cfg, to_path(config_arg, "train(config)"));
  set_config_value(cfg, "method", method, "train(method)");
  set_config_value(cfg, "output_dir", to_path(output_dir_arg, "train(output_dir)"), "train(output_dir)");
  for (auto kv : trl_keys) {
    const std::string key = kv.first.cast<std::string>();
    const std::string where = "train(" + key + "=...)";
    if (auto text = flag_text(kv.second, where)) set_config_value(cfg, key, *text, where);
  }
  cfg.validate();
  const std::string model = to_path(model_arg, "train(model)");
  const std::string data = to_path(data_arg, "train(data)");
  const std::string ref_model = ref_model_arg.is_none() ? "" : to_path(ref_model_arg, "train(ref_model)");
  const std::string adapter = adapter_arg.is_none() ? "" : to_path(adapter_arg, "train(adapter)");
  const std::string tokenizer = tokenizer_arg.is_none() ? "" : to_path(tokenizer_arg, "train(tokenizer)");
  at::Device dev = at::kCPU;
  if (device == "cuda" || (device == "auto" && at::hasCUDA())) dev = at::Device(at::kCUDA);
  else if (device != "cpu" && device != "auto")
    fail("train(device)", "unknown device \"" + device + "\"", "use \"auto\", \"cpu\" or \"cuda\"");
  // resume: None/False = fresh, True = the newest checkpoint in output_dir, a path = that checkpoint.
  std::string resume;
  bool want_resume = false;
  if (py::isinstance<py::bool_>(resume_arg)) want_resume = resume_arg.cast<bool>();
  else if (!resume_arg.is_none()) want_resume = true, resume = to_path(resume_arg, "train(resume)");

  TrainSummary s;
  {
    py::gil_scoped_release nogil;
    ensure_compute_thread_setup();
    if (!adapter.empty() && !cfg.use_peft) {
      info("train: adapter {} given: training it (use_peft on)", adapter);
      cfg.use_peft = true;
    }
    if (cfg.use_peft && !ref_model.empty())
      fail("train(ref_model)", "cannot be combined with use_peft",
           "under use_peft the reference is the model with its adapters off; drop ref_model");
    auto policy = CausalLM::from_pretrained(model, dev);
    std::unique_ptr<CausalLM> ref;
    if (!ref_model.empty()) ref = CausalLM::from_pretrained(ref_model, dev);
    if (!adapter.empty()) {
      load_lora(*policy, adapter);
      policy->lora()->cfg.base_model_name_or_path = model;
    } else if (cfg.use_peft) {
      attach_lora(*policy, peft_config(cfg, model), static_cast<uint64_t>(cfg.seed));
    }
    std::optional<Tokenizer> tok;
    const std::string tok_src = tokenizer.empty() ? model : tokenizer;
    if (!tokenizer.empty() || has_tokenizer_files(model)) tok = Tokenizer::load(tok_src);
    std::optional<ChatTemplate> tmpl;
    if (!cfg.chat_template.empty()) {
      tmpl = ChatTemplate::from_arg(cfg.chat_template);
    } else {
      const std::string tc = (is_directory(tok_src) ? tok_src : model) + "/tokenizer_config.json";
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
    Dataset train_set = load_dataset(data, kind, tok ? &*tok : nullptr, tmpl ? &*tmpl : nullptr, dopt, V);
    std::optional<Dataset> eval;
    if (!cfg.eval_data.empty())
      eval = load_dataset(cfg.eval_data, kind, tok ? &*tok : nullptr, tmpl ? &*tmpl : nullptr, dopt, V);
    else if (cfg.eval_split > 0)
      eval = split_eval(train_set, cfg.eval_split, cfg.seed);
    if (want_resume && resume.empty()) {
      resume = latest_checkpoint(cfg.output_dir);
      if (resume.empty())
        fail("train(resume)", "no checkpoint-<step> directory in " + cfg.output_dir,
             "train without resume, or pass the checkpoint directory");
    }
    Trainer trainer(cfg, *policy, std::move(ref), std::move(train_set), std::move(eval),
                    tok && is_directory(tok_src) ? tok_src : model);
    s = trainer.train(resume);
  }
  json logged = json::array();
  for (auto& row : s.logged) logged.push_back(row);
  json out = {{"method", cfg.method},
              {"output_dir", cfg.output_dir},
              {"metrics", cfg.output_dir + "/metrics.jsonl"},
              {"steps", s.steps},
              {"first_loss", s.first_loss},
              {"last_loss", s.last_loss},
              {"seconds", s.seconds},
              {"tokens_per_second", s.tokens_per_second},
              {"logged", logged}};
  return from_json(out);
}

}  // namespace

void bind_train(py::module_& m) {
  m.def("train", &train, py::arg("method"), py::arg("model"), py::arg("data"), py::arg("output_dir"), py::kw_only(),
        py::arg("ref_model") = py::none(), py::arg("adapter") = py::none(), py::arg("tokenizer") = py::none(),
        py::arg("config") = py::none(), py::arg("device") = "auto", py::arg("resume") = py::none(),
        R"(Train with a preference objective or SFT (as `prefopt train`); returns the summary:
{"method", "output_dir", "metrics" (the metrics.jsonl path), "steps", "first_loss",
"last_loss", "seconds", "tokens_per_second", "logged" (the rows of metrics.jsonl)}.
method: dpo | kto | bco | tpo | orpo | cpo | simpo | sft. model: an HF model directory;
data: a TRL-format JSONL(.gz); output_dir: where the model, checkpoints and metrics go.
Every TRL config key is a keyword (learning_rate=1e-3, max_steps=10, beta=0.1, loss_type="ipo",
use_peft=True, lora_target_modules=["q_proj", "v_proj"], ...; docs/training.md); None keeps
the default. config: a TOML file of keys (keywords override it). ref_model, adapter, tokenizer,
device ("auto", "cpu", "cuda") and resume (True = the newest checkpoint in output_dir, or a
checkpoint path) are the CLI's options.)");
}

}  // namespace prefopt::py_bind
