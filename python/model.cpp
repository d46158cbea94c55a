// prefopt.load_model -> Model: logprobs (the call of `prefopt logprobs`) and
// generate (the calls of `prefopt generate --prompts`: sampling with one shared
// prompt prefill, stop strings, optional python tool calls in the sandbox).
// Both release the GIL while they compute.
#include <ATen/ATen.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/fs.h"
#include "generate/sampler.h"
#include "generate/tool_loop.h"
#include "model/lora.h"
#include "model/device.h"
#include "model/model.h"
#include "sandbox/sandbox.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/run.h"

namespace prefopt::py_bind {

namespace {

using json = nlohmann::json;

struct PyModel {
  std::string dir, tokenizer_path, chat_template_arg;
  std::unique_ptr<CausalLM> lm;
  std::optional<Tokenizer> tok;           // loaded at first use
  std::optional<ChatTemplate> tmpl;       // resolved at first use
  bool tok_tried = false, tmpl_tried = false;

  const Tokenizer* tokenizer() {
    if (!tok_tried) {
      tok_tried = true;
      if (!tokenizer_path.empty()) tok = Tokenizer::load(tokenizer_path);
      else if (has_tokenizer_files(dir)) tok = Tokenizer::load(dir);
    }
    return tok ? &*tok : nullptr;
  }
  const ChatTemplate* chat_template() {
    if (!tmpl_tried) {
      tmpl_tried = true;
      if (!chat_template_arg.empty()) tmpl = ChatTemplate::from_arg(chat_template_arg);
      else if (const Tokenizer* t = tokenizer(); t && !t->chat_template_text().empty())
        tmpl = ChatTemplate::from_tokenizer(*t);
    }
    return tmpl ? &*tmpl : nullptr;
  }
};

void check_ids(const std::vector<int64_t>& ids, int64_t vocab, const std::string& where, const char* hint) {
  for (int64_t id : ids)
    if (id < 0 || id >= vocab)
      fail(where, fmt::format("token id {} is outside the model's vocabulary [0, {})", id, vocab), hint);
}

std::vector<ChatMessage> parse_messages(const json& arr, const std::string& where) {
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& m = arr[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      fail(where, fmt::format("messages[{}] must be {{\"role\": str, \"content\": str}}, found {}", i,
                              m.dump().substr(0, 80)), "TRL conversational format");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

// One prompt: text (encoded with the tokenizer's special tokens, as HF tokenizer(text)),
// token ids, or messages (the chat template with the generation prompt).
std::vector<int64_t> prompt_ids(PyModel& pm, py::handle p, const std::string& where) {
  std::vector<int64_t> ids;
  if (py::isinstance<py::str>(p)) {
    const Tokenizer* tok = pm.tokenizer();
    if (!tok)
      fail(where, "a text prompt needs a tokenizer, and " + pm.dir + " has none",
           "pass load_model(..., tokenizer=PATH), or prompts as lists of token ids");
    auto e = tok->encode(p.cast<std::string>(), /*add_special_tokens=*/true);
    ids.assign(e.begin(), e.end());
  } else if ((py::isinstance<py::list>(p) || py::isinstance<py::tuple>(p)) && py::len(p) > 0 &&
             py::isinstance<py::dict>(p.cast<py::sequence>()[0])) {
    json msgs = json(to_json(p, where));
    const Tokenizer* tok = pm.tokenizer();
    const ChatTemplate* ct = pm.chat_template();
    if (!tok || !ct)
      fail(where, "a conversational prompt needs a tokenizer with a chat template",
           "pass load_model(..., chat_template=NAME) (one of: " +
               fmt::format("{}", fmt::join(ChatTemplate::builtin_names(), ", ")) +
               "), or use a tokenizer whose tokenizer_config.json has one");
    auto enc = ct->render(*tok, parse_messages(msgs, where), /*add_generation_prompt=*/true);
    ids.assign(enc.ids.begin(), enc.ids.end());
  } else {
    ids = to_ids(p, where);
  }
  if (ids.empty()) fail(where, "the prompt encodes to no tokens", "give a non-empty prompt");
  check_ids(ids, pm.lm->config().vocab_size, where, "is the tokenizer the model's own?");
  return ids;
}

std::vector<std::vector<float>> logprobs(PyModel& pm, py::object seqs) {
  auto rows = to_id_lists(seqs, "Model.logprobs(ids)");
  const auto& cfg = pm.lm->config();
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string where = fmt::format("Model.logprobs(ids[{}])", i);
    check_ids(rows[i], cfg.vocab_size, where, "were these ids made with this model's tokenizer?");
    if (rows[i].size() > static_cast<size_t>(cfg.max_position_embeddings))
      fail(where, fmt::format("sequence of {} tokens exceeds the model's context length {}", rows[i].size(),
                              cfg.max_position_embeddings));
  }
  py::gil_scoped_release nogil;
  ensure_compute_thread_setup();
  return token_logprobs(*pm.lm, rows);
}

py::object generate(PyModel& pm, py::object prompts, int n, double temperature, int top_k, double top_p, uint64_t seed,
                    int max_new_tokens, std::optional<std::vector<std::string>> stop, std::optional<std::string> tools,
                    int max_tool_calls, int batch_size) {
  const std::string w = "Model.generate";
  if (!py::isinstance<py::list>(prompts) && !py::isinstance<py::tuple>(prompts))
    fail(w + "(prompts)", "expected a list of prompts", "each a str, a list of token ids or a list of messages");
  if (py::len(prompts) > 0 && py::isinstance<py::int_>(prompts.cast<py::sequence>()[0]))
    fail(w + "(prompts)", "expected a list of prompts, found a list of ints", "one prompt of ids is [[id, id, ...]]");
  if (n < 1 || n > (1 << 20)) fail(w + "(n)", fmt::format("{} is not in [1, {}]", n, 1 << 20), "samples per prompt");
  if (!(temperature >= 0 && temperature <= 100)) fail(w + "(temperature)", "not in [0, 100]", "0 = greedy");
  if (top_k < 0) fail(w + "(top_k)", "must be >= 0", "0 = off");
  if (!(top_p > 0 && top_p <= 1)) fail(w + "(top_p)", "not in (0, 1]", "1 = off");
  if (max_new_tokens < 1) fail(w + "(max_new_tokens)", "must be >= 1", "new tokens per sample");
  if (tools && *tools != "python") fail(w + "(tools)", fmt::format("unknown tool '{}'", *tools), "the only tool is: python");
  std::vector<std::vector<int64_t>> ids;
  size_t i = 0;
  for (auto p : prompts) ids.push_back(prompt_ids(pm, p, fmt::format("{}(prompts[{}])", w, i++)));
  const Tokenizer* tok = pm.tokenizer();
  SamplingParams sp;
  sp.temperature = temperature, sp.top_k = top_k, sp.top_p = top_p, sp.seed = seed;
  sp.max_new_tokens = max_new_tokens;
  sp.eos_ids = model_eos_ids(pm.dir, *pm.lm, tok);
  if (stop) sp.stop_strings = *stop;
  sp.n = n;
  if ((!sp.stop_strings.empty() || tools) && !tok)
    fail(w, std::string(tools ? "tools" : "stop strings") + " need a tokenizer, and " + pm.dir + " has none",
         "pass load_model(..., tokenizer=PATH)");

  json out = json::array();
  {
    py::gil_scoped_release nogil;
    ensure_compute_thread_setup();
    const size_t B = static_cast<size_t>(std::max(1, batch_size));
    for (size_t b0 = 0; b0 < ids.size(); b0 += B) {
      const size_t b1 = std::min(ids.size(), b0 + B);
      std::vector<std::vector<int64_t>> batch(ids.begin() + b0, ids.begin() + b1);
      SamplingParams bsp = sp;
      for (size_t k = b0; k < b1; ++k) bsp.stream_ids.push_back(k);  // streams follow the prompt list, not the batching
      if (!tools) {
        auto got = sample(*pm.lm, tok, batch, bsp);
        for (auto& per_prompt : got) {
          json samples = json::array();
          for (const Sample& s : per_prompt)
            samples.push_back({{"text", s.text}, {"ids", s.ids}, {"finish_reason", s.finish_reason},
                               {"logprob_sum", s.logprob_sum}});
          out.push_back(std::move(samples));
        }
      } else {
        std::vector<std::vector<int64_t>> rows;
        for (auto& p : batch)
          for (int j = 0; j < n; ++j) rows.push_back(p);
        ToolLoopParams tp;
        tp.max_tool_calls = max_tool_calls, tp.max_new_tokens = sp.max_new_tokens;
        auto tr = run_tool_loop(rows, make_sampling_policy(*pm.lm, *tok, bsp),
                                [](const std::string& prog) { return run_python_transcript(prog); }, *tok, tp);
        for (size_t r = 0; r < tr.size(); r += n) {
          json samples = json::array();
          for (int j = 0; j < n; ++j) {
            const Trajectory& t = tr[r + j];
            std::vector<int> mask;
            for (auto role : t.roles) mask.push_back(role == static_cast<uint8_t>(Role::Assistant));
            samples.push_back({{"text", t.text}, {"ids", t.ids}, {"finish_reason", t.finish_reason},
                               {"tool_calls", t.tool_calls}, {"assistant_mask", mask}});
          }
          out.push_back(std::move(samples));
        }
      }
    }
  }
  return from_json(out);
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<PyModel>(m, "Model", "A causal LM loaded by prefopt.load_model (prefopt::CausalLM).")
      .def("logprobs", &logprobs, py::arg("ids"),
           R"(log p(x[t+1] | x[<=t]) for each list of token ids: one value per position after the
first (the values of `prefopt logprobs`). Returns list[list[float]].)")
      .def("generate", &generate, py::arg("prompts"), py::arg("n") = 1, py::arg("temperature") = 1.0,
           py::arg("top_k") = 0, py::arg("top_p") = 1.0, py::arg("seed") = 0, py::arg("max_new_tokens") = 256,
           py::arg("stop") = py::none(), py::arg("tools") = py::none(), py::arg("max_tool_calls") = 4,
           py::arg("batch_size") = 8,
           R"(Sample n continuations of each prompt (as `prefopt generate --prompts`).
prompts: a list; each a str (encoded with the tokenizer's special tokens), a list of token
ids, or a list of {"role", "content"} messages (the chat template, with the generation prompt).
temperature 0 = greedy; top_k 0 / top_p 1 = off; stop: strings that end a sample (cut before);
tools="python" runs closed ```python blocks in the sandbox. Returns result[prompt][sample] =
{"text", "ids" (new tokens), "finish_reason", "logprob_sum"} (with tools: "tool_calls",
"assistant_mask" instead of "logprob_sum"). Samples reproduce for a seed, whatever batch_size.)")
      .def_property_readonly("config", [](const PyModel& pm) { return from_json(pm.lm->config().raw); })
      .def_property_readonly("vocab_size", [](const PyModel& pm) { return pm.lm->config().vocab_size; })
      .def_property_readonly("num_parameters", [](const PyModel& pm) { return pm.lm->num_parameters(); })
      .def_property_readonly("path", [](const PyModel& pm) { return pm.dir; })
      .def("__repr__", [](const PyModel& pm) {
        return fmt::format("prefopt.Model('{}', vocab_size={}, num_parameters={})", pm.dir, pm.lm->config().vocab_size,
                           pm.lm->num_parameters());
      });

  m.def(
      "load_model",
      [](py::object path, py::object adapter, py::object tokenizer, std::optional<std::string> chat_template,
         const std::string& device) {
        auto pm = std::make_unique<PyModel>();
        pm->dir = to_path(path, "load_model(path)");
        if (!tokenizer.is_none()) pm->tokenizer_path = to_path(tokenizer, "load_model(tokenizer)");
        pm->chat_template_arg = chat_template.value_or("");
        const at::Device dev = parse_device(device, "load_model(device)");
        std::string adapter_dir = adapter.is_none() ? "" : to_path(adapter, "load_model(adapter)");
        py::gil_scoped_release nogil;
        pm->lm = CausalLM::from_pretrained(pm->dir, dev);
        if (!adapter_dir.empty()) load_lora(*pm->lm, adapter_dir);
        return pm;
      },
      py::arg("path"), py::arg("adapter") = py::none(), py::arg("tokenizer") = py::none(),
      py::arg("chat_template") = py::none(), py::arg("device") = "cpu",
      R"(Load an HF model directory (config.json + safetensors), optionally with a PEFT LoRA adapter.
tokenizer: a tokenizer path (default: the model directory, when it has tokenizer files);
chat_template: a built-in name or .jinja file for conversational prompts; device: "cpu",
"cuda" or "auto".)");
}

}  // namespace prefopt::py_bind
