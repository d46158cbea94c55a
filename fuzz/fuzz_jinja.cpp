// Fuzz target: the Jinja chat-template engine. The input is the template
// source; it is parsed, then rendered with a fixed conversation (system, user,
// assistant with a tool call, tool result) and tools, the way
// apply_chat_template passes them; then the same text as a ChatTemplate is
// rendered to segments and token ids with a small tokenizer (the per-token
// roles come from rendering prefixes). A syntax error or a render the template
// rejects (jinja::RenderError) is a prefopt::Error: accepted.
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.h"
#include "fuzz/tiny_tokenizer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"

using oj = nlohmann::ordered_json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const oj kMessages = oj::parse(R"([
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
    {"role": "tool", "content": "5"},
    {"role": "assistant", "content": "2 + 3 = 5"}])");
  static const oj kTools = oj::parse(R"([{"type": "function", "function": {"name": "add", "description": "a + b",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}])");
  static const oj kSpecial = oj::parse(R"({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>"})");
  prefopt::jinja::Options opt;
  opt.strftime_now = [](const std::string&) { return std::string("26 Jul 2026"); };
  const std::string text(reinterpret_cast<const char*>(data), size);
  prefopt::fuzz::fuzz_guard([&] {
    prefopt::jinja::Template t(text, "fuzz.jinja");
    oj vars = kSpecial;
    vars["messages"] = kMessages;
    vars["tools"] = kTools;
    vars["add_generation_prompt"] = true;
    auto out = t.render(vars, opt);
    size_t prev = 0;
    for (auto [b, e] : out.generation) {
      if (b < prev || b > e || e > out.text.size()) std::abort();
      prev = e;
    }
  });
  prefopt::fuzz::fuzz_guard([&] {
    auto ct = prefopt::ChatTemplate::from_jinja(text, "fuzz.jinja", kSpecial);
    std::vector<prefopt::ChatMessage> msgs = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}};
    auto enc = ct.render(prefopt::fuzz::tiny_tokenizer(), msgs, false);
    if (enc.ids.size() != enc.roles.size()) std::abort();
    (void)ct.render_segments_json(kMessages, kTools, true, oj::object());
  });
  return 0;
}
