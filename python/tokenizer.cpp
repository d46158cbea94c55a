// prefopt.Tokenizer: encode / decode / apply_chat_template over prefopt::Tokenizer
// and prefopt::ChatTemplate (the calls of `prefopt tokenize` and
// `prefopt apply-chat-template`).
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace prefopt::py_bind {

namespace {

using ojson = nlohmann::ordered_json;

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
std::string dir_of(const std::string& p) {
  if (is_directory(p)) return p;
  size_t k = p.find_last_of('/');
  return k == std::string::npos ? "." : p.substr(0, k);
}

struct PyTokenizer {
  Tokenizer tok;
  std::string chat_template_arg;                // "" = the tokenizer's own
  mutable std::shared_ptr<ChatTemplate> tmpl;  // resolved at first use

  const ChatTemplate& chat_template() const {
    if (!tmpl) {
      const std::string& a = chat_template_arg;
      if (a.empty())
        tmpl = std::make_shared<ChatTemplate>(ChatTemplate::from_tokenizer(tok));
      else if (file_exists(a) && (ends_with(a, ".jinja") || ends_with(a, ".j2")))
        tmpl = std::make_shared<ChatTemplate>(
            ChatTemplate::from_jinja(read_file(a), a, ChatTemplate::special_tokens(dir_of(tok.source()))));
      else
        tmpl = std::make_shared<ChatTemplate>(ChatTemplate::from_arg(a));
    }
    return *tmpl;
  }
};

std::vector<int32_t> checked_ids(const PyTokenizer& t, py::handle ids) {
  std::vector<int32_t> v;
  const int64_t V = t.tok.vocab_size();
  for (int64_t id : to_ids(ids, "Tokenizer.decode(ids)")) {
    if (id < 0 || id >= V)
      fail("Tokenizer.decode(ids)", fmt::format("token id {} is not in [0, {})", id, V),
           "the ids must come from this tokenizer");
    v.push_back(static_cast<int32_t>(id));
  }
  return v;
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<PyTokenizer>(m, "Tokenizer", R"(A Hugging Face tokenizer, token for token (prefopt::Tokenizer).

Tokenizer(path, chat_template=None)
  path: tokenizer.json, a model directory (tokenizer.json, or vocab.json + merges.txt,
        or tokenizer.model), a tiktoken tokenizer.model, or a .gguf file.
  chat_template: a .jinja file or a built-in name (chatml, llama3, llama2, mistral,
        gemma, phi3, plain) instead of the tokenizer's own template.)")
      .def(py::init([](py::object path, py::object chat_template) {
             std::string p = to_path(path, "Tokenizer(path)");
             std::string ct = chat_template.is_none() ? "" : to_path(chat_template, "Tokenizer(chat_template)");
             return PyTokenizer{Tokenizer::load(p), ct, nullptr};
           }),
           py::arg("path"), py::arg("chat_template") = py::none())
      .def(
          "encode",
          [](const PyTokenizer& t, const std::string& text, bool add_special_tokens) {
            auto ids = t.tok.encode(text, add_special_tokens);
            return std::vector<int64_t>(ids.begin(), ids.end());
          },
          py::arg("text"), py::arg("add_special_tokens") = false,
          "Token ids of text (no BOS/EOS unless add_special_tokens, as HF).")
      .def(
          "decode",
          [](const PyTokenizer& t, py::object ids, bool skip_special_tokens) {
            std::string s = t.tok.decode(checked_ids(t, ids), skip_special_tokens);
            return from_json(nlohmann::json(s));  // invalid UTF-8 -> U+FFFD
          },
          py::arg("ids"), py::arg("skip_special_tokens") = false, "Text of token ids.")
      .def(
          "apply_chat_template",
          [](const PyTokenizer& t, py::object messages, py::object tools, bool add_generation_prompt, bool tokenize,
             py::object chat_template_kwargs) -> py::object {
            ojson msgs = to_json(messages, "apply_chat_template(messages)");
            const char* shape = "a list of {\"role\": str, \"content\": ...} dicts";
            if (!msgs.is_array()) fail("apply_chat_template(messages)", "expected a list of messages", shape);
            for (size_t i = 0; i < msgs.size(); ++i)
              if (!msgs[i].is_object() || !msgs[i].contains("role") || !msgs[i]["role"].is_string())
                fail(fmt::format("apply_chat_template(messages[{}])", i), "every message must be a dict with a str \"role\"",
                     shape);
            ojson tl;
            if (!tools.is_none()) {
              tl = to_json(tools, "apply_chat_template(tools)");
              if (!tl.is_array()) fail("apply_chat_template(tools)", "expected a list of JSON schemas (dicts)", "or None");
            }
            ojson kw = ojson::object();
            if (!chat_template_kwargs.is_none()) {
              kw = to_json(chat_template_kwargs, "apply_chat_template(chat_template_kwargs)");
              if (!kw.is_object()) fail("apply_chat_template(chat_template_kwargs)", "expected a dict", "or None");
            }
            std::string text = t.chat_template().render_json(msgs, tl, add_generation_prompt, kw);
            if (!tokenize) return from_json(nlohmann::json(text));
            auto ids = t.tok.encode(text, /*add_special_tokens=*/false);  // as transformers: the template has them
            return py::cast(std::vector<int64_t>(ids.begin(), ids.end()));
          },
          py::arg("messages"), py::arg("tools") = py::none(), py::arg("add_generation_prompt") = false,
          py::arg("tokenize") = false, py::arg("chat_template_kwargs") = py::none(),
          R"(The conversation rendered by the chat template, as transformers'
apply_chat_template(messages, tools=tools, add_generation_prompt=..., tokenize=False);
tokenize=True returns its token ids instead. A template's raise_exception is a prefopt.TemplateError.)")
      .def_property_readonly("vocab_size", [](const PyTokenizer& t) { return t.tok.vocab_size(); })
      .def("__len__", [](const PyTokenizer& t) { return t.tok.vocab_size(); })
      .def_property_readonly("bos_token_id", [](const PyTokenizer& t) { return t.tok.bos_id(); })
      .def_property_readonly("eos_token_id", [](const PyTokenizer& t) { return t.tok.eos_id(); })
      .def_property_readonly("pad_token_id", [](const PyTokenizer& t) { return t.tok.pad_id(); })
      .def_property_readonly("unk_token_id", [](const PyTokenizer& t) { return t.tok.unk_id(); })
      .def("token_to_id", [](const PyTokenizer& t, const std::string& s) { return t.tok.token_to_id(s); },
           py::arg("token"), "The id of a token string, or None.")
      .def(
          "id_to_token",
          [](const PyTokenizer& t, int64_t id) -> std::optional<std::string> {
            if (id < 0 || id >= t.tok.vocab_size()) return std::nullopt;
            std::string s = t.tok.id_to_token(static_cast<int32_t>(id));
            if (s.empty()) return std::nullopt;
            return s;
          },
          py::arg("id"), "The token string of an id, or None.")
      .def_property_readonly("chat_template",
                             [](const PyTokenizer& t) -> std::optional<std::string> {
                               if (t.tok.chat_template_text().empty()) return std::nullopt;
                               return t.tok.chat_template_text();
                             })
      .def_property_readonly("source", [](const PyTokenizer& t) { return t.tok.source(); })
      .def("__repr__", [](const PyTokenizer& t) {
        return fmt::format("prefopt.Tokenizer('{}', vocab_size={})", t.tok.source(), t.tok.vocab_size());
      });
}

}  // namespace prefopt::py_bind
