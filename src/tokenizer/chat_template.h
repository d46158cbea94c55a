// prefopt chat templates: TRL conversational messages -> token ids + a role per token.
//
// Built-ins (recognised from tokenizer_config.json's chat_template, or chosen by name):
//   chatml (Qwen), llama3, llama2, mistral ([INST] without <<SYS>>), gemma, phi3, plain (demo model).
// The ids always equal tok.encode(rendered text) (one joint encoding); each token's role
// comes from the byte offsets of the segment that produced it:
//   message content            -> that message's role (System/User/Assistant/Tool);
//   template scaffolding        -> Template (role headers, BOS, separators);
//   the assistant's end-of-turn marker (<|im_end|>, <|eot_id|>, </s>, <end_of_turn>, <|end|>)
//                               -> Assistant (the model must learn to stop), as TRL's
//                                  assistant masks do.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace prefopt {

class Tokenizer;

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

enum class ChatFormat : uint8_t { ChatML, Llama3, Llama2, Mistral, Gemma, Phi3, Plain };

class ChatTemplate {
 public:
  static ChatTemplate by_name(const std::string& name);  // unknown -> Error listing built-ins
  // A tokenizer_config.json path, or the chat_template text itself.
  static ChatTemplate detect(const std::string& tokenizer_config_path_or_template_text);
  static std::vector<std::string> builtin_names();

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

 private:
  ChatTemplate(ChatFormat f, std::string name) : format_(f), name_(std::move(name)) {}
  ChatFormat format_;
  std::string name_;
  std::string default_system_;  // ChatML variants that inject a system prompt (Qwen)
};

}  // namespace prefopt
