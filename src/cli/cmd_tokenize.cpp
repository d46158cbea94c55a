// prefopt tokenize --tokenizer PATH --input F.jsonl [--output F] [--add-special-tokens]
//                  [--decode [--skip-special-tokens]] [--chat [--chat-template NAME]
//                  [--add-generation-prompt] [--role-ids]]
// Rows:  {"text": "..."}                      -> {"input_ids": [...]}
//        {"prompt": "...", "completion": "..."} -> {"input_ids": [...], "boundary": N, "prefix_ok": bool}
//        --decode  {"input_ids": [...]}       -> {"text": "..."}
//        --chat    {"messages": [{"role","content"}...]} -> {"input_ids": [...], "roles": ["template",
//                  "system","user","assistant","tool"...]} (--role-ids: 0..4 in that order)
//
// prefopt apply-chat-template --tokenizer DIR [--chat-template FILE|NAME] --input F.jsonl [--output F]
// Rows:  {"messages": [...], "tools"?: [...], "add_generation_prompt"?: bool, "chat_template_kwargs"?: {...}}
//        -> {"text": "..."} (transformers' apply_chat_template(..., tokenize=False)), or
//           {"error": "TemplateError: ..."} for a row the template rejects; then exit 2.
// Only tokenizer_config.json (and chat_template.jinja / special_tokens_map.json) is read.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/bool_flag.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

namespace prefopt::cli {

namespace {
struct TokenizeArgs {
  std::string tokenizer, input, output, chat_template;
  bool add_special = false, decode = false, chat = false, gen_prompt = false, role_ids = false, skip_special = false;
};

std::string str_field(const json& row, const char* key, const std::string& file, size_t line) {
  const json& v = require_field(row, key, file, line);
  if (!v.is_string())
    fail(where(file, line), fmt::format("field \"{}\" must be a string, found {}", key, v.type_name()),
         "each line is one JSON object, e.g. {\"text\": \"...\"}");
  return v.get<std::string>();
}

void run_tokenize(const TokenizeArgs& a) {
  Tokenizer tok = Tokenizer::load(a.tokenizer);
  std::unique_ptr<ChatTemplate> ct;
  if (a.chat) {
    if (!a.chat_template.empty()) {
      ct = std::make_unique<ChatTemplate>(ChatTemplate::from_arg(a.chat_template));
    } else if (!tok.chat_template_text().empty()) {
      ct = std::make_unique<ChatTemplate>(ChatTemplate::from_tokenizer(tok));
    } else {
      std::string names;
      for (auto& n : ChatTemplate::builtin_names()) names += (names.empty() ? "" : ", ") + n;
      fail(a.tokenizer, "has no chat_template (tokenizer_config.json)",
           "choose one with --chat-template NAME; built-ins: " + names);
    }
  }
  std::string out;
  size_t rows = 0, mismatched = 0;
  for_each_jsonl(a.input, [&](const json& row, size_t line) {
    json o;
    if (a.decode) {
      const json& ids = require_field(row, "input_ids", a.input, line);
      if (!ids.is_array())
        fail(where(a.input, line), "\"input_ids\" must be an array of integers", "e.g. {\"input_ids\": [15496, 995]}");
      std::vector<int32_t> v;
      for (const auto& x : ids) {
        if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= tok.vocab_size())
          fail(where(a.input, line), fmt::format("token id {} is not in [0, {})", x.dump(), tok.vocab_size()),
               "the ids must come from this tokenizer");
        v.push_back(x.get<int32_t>());
      }
      o["text"] = tok.decode(v, a.skip_special);
    } else if (a.chat) {
      const json& msgs = require_field(row, "messages", a.input, line);
      if (!msgs.is_array())
        fail(where(a.input, line), "\"messages\" must be an array of {\"role\", \"content\"}",
             "TRL conversational format");
      std::vector<ChatMessage> m;
      for (const auto& x : msgs) {
        if (!x.is_object() || !x.contains("role") || !x.contains("content") || !x["content"].is_string())
          fail(where(a.input, line), "each message needs string \"role\" and \"content\"", "TRL conversational format");
        m.push_back({x["role"].get<std::string>(), x["content"].get<std::string>()});
      }
      EncodedChat ec;
      try {
        ec = ct->render(tok, m, a.gen_prompt);
      } catch (const Error& e) {
        fail(where(a.input, line), e.what(), "fix the row's messages");
      }
      o["input_ids"] = ec.ids;
      json roles = json::array();
      for (Role r : ec.roles) roles.push_back(a.role_ids ? json(int(r)) : json(role_name(r)));
      o["roles"] = roles;
    } else if (row.contains("prompt") && row.contains("completion")) {
      auto pc = encode_prompt_completion(tok, str_field(row, "prompt", a.input, line),
                                         str_field(row, "completion", a.input, line), a.add_special);
      if (!pc.prefix_ok) {
        ++mismatched;
        warn("{}: the prompt's tokens are not a prefix of prompt+completion (shared {} tokens); boundary set there",
             where(a.input, line), pc.boundary);
      }
      o["input_ids"] = pc.ids;
      o["boundary"] = pc.boundary;
      o["prefix_ok"] = pc.prefix_ok;
    } else {
      o["input_ids"] = tok.encode(str_field(row, "text", a.input, line), a.add_special);
    }
    out += o.dump() + "\n";
    ++rows;
  });
  if (a.output.empty() || a.output == "-") {
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    atomic_write(a.output, out);
  }
  info("tokenize: {} rows{}", rows,
       mismatched ? fmt::format(", {} with a prompt/completion tokenization mismatch", mismatched) : "");
}
struct ApplyArgs {
  std::string tokenizer, chat_template, input, output;
};

void run_apply_chat_template(const ApplyArgs& a) {
  using ojson = nlohmann::ordered_json;
  if (!is_directory(a.tokenizer) && !file_exists(a.tokenizer))
    fail("--tokenizer", fmt::format("no such file or directory: {}", a.tokenizer),
         "pass the model directory that holds tokenizer_config.json");
  // The model directory: --tokenizer itself, or the folder of the file it names.
  std::string dir = a.tokenizer;
  const bool is_config = a.tokenizer.size() >= 21 &&
                         a.tokenizer.compare(a.tokenizer.size() - 21, 21, "tokenizer_config.json") == 0;
  if (!is_directory(a.tokenizer)) {
    size_t k = a.tokenizer.find_last_of('/');
    dir = k == std::string::npos ? "." : a.tokenizer.substr(0, k);
  }
  auto ends_with = [](const std::string& s, const char* suf) {
    size_t n = std::strlen(suf);
    return s.size() >= n && s.compare(s.size() - n, n, suf) == 0;
  };
  ChatTemplate ct = [&] {
    if (a.chat_template.empty()) return ChatTemplate::detect(is_config ? a.tokenizer : dir);
    if (file_exists(a.chat_template) && (ends_with(a.chat_template, ".jinja") || ends_with(a.chat_template, ".j2")))
      return ChatTemplate::from_jinja(read_file(a.chat_template), a.chat_template, ChatTemplate::special_tokens(dir));
    return ChatTemplate::from_arg(a.chat_template);
  }();
  // Rows keep their key order (tojson prints tool schemas in input order), so they are
  // parsed here as ordered JSON rather than through for_each_jsonl.
  std::string text = read_maybe_gz(a.input);
  std::string out;
  size_t rows = 0, rejected = 0, line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string l = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    ojson row;
    try {
      row = ojson::parse(l);
    } catch (const std::exception& e) {
      fail(where(a.input, line), fmt::format("not valid JSON: {}", e.what()), "each line is one JSON object");
    }
    const char* shape = "{\"messages\": [...], \"tools\"?: [...], \"add_generation_prompt\"?: bool, \"chat_template_kwargs\"?: {...}}";
    if (!row.is_object() || !row.contains("messages") || !row["messages"].is_array())
      fail(where(a.input, line), "expected an object with a \"messages\" array", shape);
    for (auto& m : row["messages"])
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        fail(where(a.input, line), "every message must be an object with a string \"role\"", shape);
    ojson tools;
    if (row.contains("tools") && !row["tools"].is_null()) {
      if (!row["tools"].is_array()) fail(where(a.input, line), "\"tools\" must be an array of JSON schemas", shape);
      tools = row["tools"];
    }
    bool gen = false;
    if (row.contains("add_generation_prompt")) {
      if (!row["add_generation_prompt"].is_boolean())
        fail(where(a.input, line), "\"add_generation_prompt\" must be true or false", shape);
      gen = row["add_generation_prompt"].get<bool>();
    }
    ojson kwargs = ojson::object();
    if (row.contains("chat_template_kwargs")) {
      if (!row["chat_template_kwargs"].is_object())
        fail(where(a.input, line), "\"chat_template_kwargs\" must be an object", shape);
      kwargs = row["chat_template_kwargs"];
    }
    ojson o;
    try {
      o["text"] = ct.render_json(row["messages"], tools, gen, kwargs);
    } catch (const jinja::RenderError& e) {
      o["error"] = e.kind() + ": " + e.message();
      ++rejected;
      warn("{}: the chat template rejects this row: {}: {}", where(a.input, line), e.kind(), e.message());
    }
    out += o.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
    ++rows;
  }
  if (a.output.empty() || a.output == "-") std::fwrite(out.data(), 1, out.size(), stdout);
  else atomic_write(a.output, out);
  info("apply-chat-template: {} rows, {} rejected by the template", rows, rejected);
  if (rejected)
    fail(a.input, fmt::format("{} of {} rows rejected by the chat template (their output lines hold \"error\")", rejected, rows),
         "fix those conversations (roles, tool calls) or use a template that accepts them");
}
}  // namespace

void register_apply_chat_template(CLI::App& app) {
  auto a = std::make_shared<ApplyArgs>();
  auto* cmd = app.add_subcommand("apply-chat-template",
                                 "Render conversations to text with the model's Jinja chat template (as transformers)");
  cmd->add_option("--tokenizer", a->tokenizer, "model directory with tokenizer_config.json (or that file)")->required();
  cmd->add_option("--chat-template", a->chat_template, "a .jinja file (or a built-in name) instead of the model's template");
  cmd->add_option("--input", a->input, "JSONL: {\"messages\", \"tools\"?, \"add_generation_prompt\"?, \"chat_template_kwargs\"?}")
      ->required();
  cmd->add_option("--output,-o", a->output, "output JSONL (default stdout; written atomically)");
  cmd->callback([a] { run_apply_chat_template(*a); });
}

void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Encode/decode JSONL with an HF tokenizer (token for token), or chats with role masks");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json, model directory, tokenizer.model (tiktoken) or .gguf")
      ->required();
  cmd->add_option("--input", a->input, "JSONL: {\"text\"} rows (or {\"input_ids\"} with --decode, {\"messages\"} with --chat)")
      ->required();
  cmd->add_option("--output,-o", a->output, "output JSONL (default stdout; written atomically)");
  add_bool_flag(cmd, "--add-special-tokens", a->add_special, "add the post-processor's BOS/EOS (default: none)");
  add_bool_flag(cmd, "--decode", a->decode, "ids -> text");
  add_bool_flag(cmd, "--skip-special-tokens", a->skip_special, "with --decode: drop special tokens");
  add_bool_flag(cmd, "--chat", a->chat, "render TRL messages with the chat template; print ids and per-token roles");
  cmd->add_option("--chat-template", a->chat_template,
                  "a .jinja file, or a built-in: chatml, llama3, llama2, mistral, gemma, phi3, plain (default: the "
                  "tokenizer's own template, rendered by the Jinja engine)");
  add_bool_flag(cmd, "--add-generation-prompt", a->gen_prompt, "with --chat: end with the assistant header");
  add_bool_flag(cmd, "--role-ids", a->role_ids, "with --chat: roles as ints (0 template, 1 system, 2 user, 3 assistant, 4 tool)");
  cmd->callback([a] {
    if (a->decode && a->chat) fail("tokenize", "--decode and --chat together", "choose one");
    run_tokenize(*a);
  });
}

}  // namespace prefopt::cli
