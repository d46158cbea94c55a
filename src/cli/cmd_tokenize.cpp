// prefopt tokenize --tokenizer PATH --input F.jsonl [--output F] [--add-special-tokens]
//                  [--decode [--skip-special-tokens]] [--chat [--chat-template NAME]
//                  [--add-generation-prompt] [--role-ids]]
// Rows:  {"text": "..."}                      -> {"input_ids": [...]}
//        {"prompt": "...", "completion": "..."} -> {"input_ids": [...], "boundary": N, "prefix_ok": bool}
//        --decode  {"input_ids": [...]}       -> {"text": "..."}
//        --chat    {"messages": [{"role","content"}...]} -> {"input_ids": [...], "roles": ["template",
//                  "system","user","assistant","tool"...]} (--role-ids: 0..4 in that order)
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "tokenizer/chat_template.h"
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
      ct = std::make_unique<ChatTemplate>(ChatTemplate::by_name(a.chat_template));
    } else if (!tok.chat_template_text().empty()) {
      ct = std::make_unique<ChatTemplate>(ChatTemplate::detect(tok.chat_template_text()));
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
}  // namespace

void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize", "Encode/decode JSONL with an HF tokenizer (token for token), or chats with role masks");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json, model directory, tokenizer.model (tiktoken) or .gguf")
      ->required();
  cmd->add_option("--input", a->input, "JSONL: {\"text\"} rows (or {\"input_ids\"} with --decode, {\"messages\"} with --chat)")
      ->required();
  cmd->add_option("--output,-o", a->output, "output JSONL (default stdout; written atomically)");
  cmd->add_flag("--add-special-tokens", a->add_special, "add the post-processor's BOS/EOS (default: none)");
  cmd->add_flag("--decode", a->decode, "ids -> text");
  cmd->add_flag("--skip-special-tokens", a->skip_special, "with --decode: drop special tokens");
  cmd->add_flag("--chat", a->chat, "render TRL messages with the chat template; print ids and per-token roles");
  cmd->add_option("--chat-template", a->chat_template,
                  "built-in template: chatml, llama3, llama2, mistral, gemma, phi3, plain (default: recognised from "
                  "tokenizer_config.json)");
  cmd->add_flag("--add-generation-prompt", a->gen_prompt, "with --chat: end with the assistant header");
  cmd->add_flag("--role-ids", a->role_ids, "with --chat: roles as ints (0 template, 1 system, 2 user, 3 assistant, 4 tool)");
  cmd->callback([a] {
    if (a->decode && a->chat) fail("tokenize", "--decode and --chat together", "choose one");
    run_tokenize(*a);
  });
}

}  // namespace prefopt::cli
