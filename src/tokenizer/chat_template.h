// prefopt chat templates: TRL conversational messages -> token ids + a role per token.
//
// A tokenizer's own template (tokenizer_config.json "chat_template", a string or a list of
// named templates, or chat_template.jinja beside it) is rendered by the Jinja engine
// (tokenizer/jinja.h) exactly as transformers' apply_chat_template renders it. Built-in
// renderers remain for tokenizers without any template, chosen by name:
//   chatml (Qwen), llama3, llama2, mistral ([INST] without <<SYS>>), gemma, phi3, plain (demo model).
// The ids always equal tok.encode(rendered text) (one joint encoding); each token's role
// comes from the byte offsets of the segment that produced it (for a Jinja template the
// segments come from rendering prefixes of the conversation, docs/tokenizer.md):
//   message content            -> that message's role (System/User/Assistant/Tool);
//   template scaffolding        -> Template (role headers, BOS, separators);
//   the assistant's end-of-turn marker (<|im_end|>, <|eot_id|>, </s>, <end_of_turn>, <|end|>)
//                               -> Assistant (the model must learn to stop), as TRL's
//                                  assistant masks do.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace prefopt {

class Tokenizer;
namespace jinja {
class Template;
}

enum class Role : uint8_t { Template = 0, System, User, Assistant, Tool };
const char* role_name(Role r);        // "template" "system" "user" "assistant" "tool"
Role parse_role(const std::string& s);  // throws Error listing the roles

struct ChatMessage {
  std::string role, content;
};

struct EncodedChat {
  std::vector<int32_t> ids;
  std::vector<Role> roles;  // same length as ids
};

// TRL-style assistant mask: 1 where the assistant wrote the token (its content and its
// end-of-turn marker), 0 for template, system, user and tool tokens.
std::vector<uint8_t> assistant_mask(const std::vector<Role>& roles);

// One rendered piece of text and who produced it.
struct ChatSegment {
  std::string text;
  Role role;
};

enum class ChatFormat : uint8_t { ChatML, Llama3, Llama2, Mistral, Gemma, Phi3, Plain, Jinja };

class ChatTemplate {
 public:
  static ChatTemplate by_name(const std::string& name);  // unknown -> Error listing built-ins
  // A tokenizer_config.json path, a model directory, a .jinja file, or the template text
  // itself: the Jinja template it holds (Error when there is none).
  static ChatTemplate detect(const std::string& path_or_template_text);
  // The template of a loaded tokenizer: tokenizer_config.json / chat_template.jinja next to
  // its source, else the template text it carries (GGUF). Error when it has none.
  static ChatTemplate from_tokenizer(const Tokenizer& tok);
  // A Jinja template with its special tokens (bos_token, eos_token, ... as template variables).
  static ChatTemplate from_jinja(const std::string& text, const std::string& origin,
                                 const nlohmann::ordered_json& special_tokens);
  // transformers' list form: [{"name": "default", "template": ...}, {"name": "tool_use", ...}].
  static ChatTemplate from_named(const std::vector<std::pair<std::string, std::string>>& named,
                                 const std::string& origin, const nlohmann::ordered_json& special_tokens);
  // The special tokens of a model directory (special_tokens_map.json, then
  // tokenizer_config.json): {"bos_token": "<s>", ...} as transformers passes them.
  static nlohmann::ordered_json special_tokens(const std::string& dir);
  static std::vector<std::string> builtin_names();
  // A --chat-template argument: a built-in name, else a .jinja / tokenizer_config.json path.
  static ChatTemplate from_arg(const std::string& name_or_path);

  const std::string& name() const { return name_; }
  ChatFormat format() const { return format_; }
  // A system prompt inserted when the conversation has none (Qwen's ChatML templates).
  const std::string& default_system() const { return default_system_; }
  ChatTemplate with_default_system(std::string s) const {
    ChatTemplate t = *this;
    t.default_system_ = std::move(s);
    return t;
  }

  // The rendered conversation as segments (the rendered text is their concatenation).
  std::vector<ChatSegment> render_segments(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const;
  std::string render_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  EncodedChat render(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                     bool add_generation_prompt) const;

  // Messages as JSON (tool_calls, tool results, any extra keys), optional tools (a JSON
  // array, or null) and extra template variables (chat_template_kwargs). Jinja templates
  // only; a built-in renders role/content and ignores the rest. The template's own
  // failures (raise_exception, undefined values) throw jinja::RenderError.
  std::string render_json(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                          bool add_generation_prompt, const nlohmann::ordered_json& kwargs) const;
  std::vector<ChatSegment> render_segments_json(const nlohmann::ordered_json& messages,
                                                const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                                const nlohmann::ordered_json& kwargs) const;
  // The Jinja template text ("" for a built-in).
  const std::string& template_text() const;

 private:
  ChatTemplate(ChatFormat f, std::string name) : format_(f), name_(std::move(name)) {}
  struct JinjaState;
  ChatFormat format_;
  std::string name_;
  std::string default_system_;  // ChatML variants that inject a system prompt (Qwen)
  std::shared_ptr<const JinjaState> jinja_;  // format_ == Jinja
};

}  // namespace prefopt
