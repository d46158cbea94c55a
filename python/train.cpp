// prefopt.train: the training run of `prefopt train` (src/cli/cmd_train.cpp)
// from Python: the same set-up (config keys, policy / reference / LoRA
// adapter, tokenizer and chat template, datasets) and the same Trainer, with
// TRL's config keys as keyword arguments. Returns the run's summary as a dict.
// The GIL is released while it trains.
#include <ATen/ATen.h>
#include <pybind11/stl.h>


#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "model/device.h"
#include "model/model.h"
#include "train/run.h"
#include "train/trainer.h"

namespace prefopt::py_bind {

namespace {

using json = nlohmann::json;

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
  const at::Device dev = parse_device(device, "train(device)");
  // resume: None/False = fresh, True = the newest checkpoint in output_dir, a path = that checkpoint.
  std::string resume;
  bool want_resume = false;
  if (py::isinstance<py::bool_>(resume_arg)) want_resume = resume_arg.cast<bool>();
  else if (!resume_arg.is_none()) want_resume = true, resume = to_path(resume_arg, "train(resume)");

  TrainSummary s;
  {
    py::gil_scoped_release nogil;
    ensure_compute_thread_setup();
    TrainPaths paths{model, data, ref_model, adapter, tokenizer, want_resume, resume};
    TrainNames names{"train(ref_model)", "use_peft", "train(resume)"};
    s = run_training(cfg, paths, dev, names);
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
