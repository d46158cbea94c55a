// Chat templates as small renderers (one function per format, a switch over ChatFormat)
// that reproduce the official Jinja templates' text:
//   chatml  - Qwen2/2.5 tokenizer_config.json (<|im_start|>role\n...<|im_end|>\n)
//   llama3  - Meta-Llama-3-Instruct (<|start_header_id|>role<|end_header_id|>\n\n{trim}<|eot_id|>)
//   llama2  - Llama-2-chat ([INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] answer </s>)
//   mistral - Mistral-7B-Instruct v0.1/0.2 ([INST] ... [/INST]answer</s>)
//   gemma   - Gemma-1/2 (<start_of_turn>user|model\n{trim}<end_of_turn>\n; system text is
//             prepended to the first user turn, as Gemma-3's template does)
//   phi3    - Phi-3 (<|role|>\n...<|end|>\n)
//   plain   - the demo model: "role: content\n", assistant turns end with <|endoftext|>.
// Tokenization is one joint encode of the rendered text (ids == tok.encode(text)); roles
// come from byte offsets: each token takes the non-Template role covering most of its
// bytes, else Template.
#include "tokenizer/chat_template.h"

#include <algorithm>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

namespace prefopt {

const char* role_name(Role r) {
  switch (r) {
    case Role::Template: return "template";
    case Role::System: return "system";
    case Role::User: return "user";
    case Role::Assistant: return "assistant";
    case Role::Tool: return "tool";
  }
  return "?";
}

std::vector<uint8_t> assistant_mask(const std::vector<Role>& roles) {
  std::vector<uint8_t> m(roles.size());
  for (size_t i = 0; i < roles.size(); ++i) m[i] = roles[i] == Role::Assistant;
  return m;
}

Role parse_role(const std::string& s) {
  if (s == "system") return Role::System;
  if (s == "user") return Role::User;
  if (s == "assistant") return Role::Assistant;
  if (s == "tool" || s == "ipython") return Role::Tool;
  fail("chat message", fmt::format("unknown role {:?}", s), "roles are system, user, assistant, tool (TRL format)");
}

namespace {

struct Out {
  std::vector<ChatSegment> segs;
  void t(const std::string& s) { add(s, Role::Template); }
  void add(const std::string& s, Role r) {
    if (!s.empty()) segs.push_back({s, r});
  }
};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  auto ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

void render_chatml(Out& o, const std::vector<ChatMessage>& m, bool gen, const std::string& default_system) {
  if (!default_system.empty() && (m.empty() || m[0].role != "system")) {
    o.t("<|im_start|>system\n");
    o.add(default_system, Role::Template);  // injected by the template, not by a message
    o.t("<|im_end|>\n");
  }
  for (const auto& msg : m) {
    Role r = parse_role(msg.role);
    o.t("<|im_start|>" + msg.role + "\n");
    o.add(msg.content, r);
    o.add("<|im_end|>", r == Role::Assistant ? Role::Assistant : Role::Template);
    o.t("\n");
  }
  if (gen) o.t("<|im_start|>assistant\n");
}

void render_llama3(Out& o, const std::vector<ChatMessage>& m, bool gen) {
  o.t("<|begin_of_text|>");
  for (const auto& msg : m) {
    Role r = parse_role(msg.role);
    std::string role = r == Role::Tool ? "ipython" : msg.role;
    o.t("<|start_header_id|>" + role + "<|end_header_id|>\n\n");
    o.add(trim(msg.content), r);
    o.add("<|eot_id|>", r == Role::Assistant ? Role::Assistant : Role::Template);
  }
  if (gen) o.t("<|start_header_id|>assistant<|end_header_id|>\n\n");
}

void render_inst(Out& o, const std::vector<ChatMessage>& m, bool gen, bool llama2) {
  size_t start = 0;
  std::string system;
  if (!m.empty() && m[0].role == "system") {
    system = m[0].content;
    start = 1;
  }
  bool first_user = true;
  for (size_t i = start; i < m.size(); ++i) {
    Role r = parse_role(m[i].role);
    if (r == Role::Assistant) {
      if (llama2) {
        o.t(" ");
        o.add(trim(m[i].content), r);
        o.add(" </s>", r);
      } else {
        o.add(m[i].content, r);
        o.add("</s>", r);
      }
    } else if (r == Role::System) {
      fail("chat template " + std::string(llama2 ? "llama2" : "mistral"), "a system message after the first one",
           "only the first message may be a system message in the [INST] format");
    } else {  // user or tool turns are [INST] blocks
      o.t("<s>[INST] ");
      if (first_user && !system.empty()) {
        if (llama2) {
          o.t("<<SYS>>\n");
          o.add(system, Role::System);
          o.t("\n<</SYS>>\n\n");
        } else {
          o.add(system, Role::System);
          o.t("\n\n");
        }
      }
      o.add(llama2 ? trim(m[i].content) : m[i].content, r);
      o.t(" [/INST]");
      first_user = false;
    }
  }
  (void)gen;  // the [INST] formats have no separate generation prompt
}

void render_gemma(Out& o, const std::vector<ChatMessage>& m, bool gen) {
  o.t("<bos>");
  size_t start = 0;
  std::string system;
  if (!m.empty() && m[0].role == "system") {
    system = m[0].content;
    start = 1;
  }
  for (size_t i = start; i < m.size(); ++i) {
    Role r = parse_role(m[i].role);
    std::string role = r == Role::Assistant ? "model" : "user";
    o.t("<start_of_turn>" + role + "\n");
    if (i == start && !system.empty()) {
      o.add(trim(system), Role::System);
      o.t("\n\n");
    }
    o.add(trim(m[i].content), r);
    o.add("<end_of_turn>", r == Role::Assistant ? Role::Assistant : Role::Template);
    o.t("\n");
  }
  if (gen) o.t("<start_of_turn>model\n");
}

void render_phi3(Out& o, const std::vector<ChatMessage>& m, bool gen) {
  for (const auto& msg : m) {
    Role r = parse_role(msg.role);
    o.t("<|" + msg.role + "|>\n");
    o.add(msg.content, r);
    o.add("<|end|>", r == Role::Assistant ? Role::Assistant : Role::Template);
    o.t("\n");
  }
  if (gen && (m.empty() || m.back().role != "assistant")) o.t("<|assistant|>\n");
}

void render_plain(Out& o, const std::vector<ChatMessage>& m, bool gen) {
  for (const auto& msg : m) {
    Role r = parse_role(msg.role);
    o.t(msg.role + ": ");
    o.add(msg.content, r);
    if (r == Role::Assistant) o.add("<|endoftext|>", r);
    o.t("\n");
  }
  if (gen) o.t("assistant: ");
}

struct Builtin {
  const char* name;
  ChatFormat format;
};
const Builtin kBuiltins[] = {{"chatml", ChatFormat::ChatML}, {"llama3", ChatFormat::Llama3},
                             {"llama2", ChatFormat::Llama2}, {"mistral", ChatFormat::Mistral},
                             {"gemma", ChatFormat::Gemma},   {"phi3", ChatFormat::Phi3},
                             {"plain", ChatFormat::Plain}};

std::string builtin_list() {
  std::string s;
  for (const auto& b : kBuiltins) s += (s.empty() ? "" : ", ") + std::string(b.name);
  return s;
}

}  // namespace

std::vector<std::string> ChatTemplate::builtin_names() {
  std::vector<std::string> v;
  for (const auto& b : kBuiltins) v.push_back(b.name);
  return v;
}

ChatTemplate ChatTemplate::by_name(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "qwen" || n == "qwen2") return ChatTemplate(ChatFormat::ChatML, "chatml");
  if (n == "phi-3") n = "phi3";
  for (const auto& b : kBuiltins)
    if (n == b.name) return ChatTemplate(b.format, b.name);
  fail("--chat-template", fmt::format("unknown chat template {:?}", name), "built-ins: " + builtin_list());
}

ChatTemplate ChatTemplate::detect(const std::string& arg) {
  std::string text = arg;
  std::string origin = "chat_template";
  if (arg.size() < 4096 && arg.find('{') == std::string::npos && file_exists(arg)) {
    origin = arg;
    nlohmann::json j = nlohmann::json::parse(read_file(arg), nullptr, false);
    text.clear();
    if (j.is_object() && j.contains("chat_template")) {
      if (j["chat_template"].is_string()) text = j["chat_template"].get<std::string>();
      else if (j["chat_template"].is_array())
        for (const auto& e : j["chat_template"])
          if (e.value("name", "") == "default") text = e.value("template", "");
    }
    if (text.empty())
      fail(arg, "has no chat_template", "choose one explicitly with --chat-template NAME (built-ins: " + builtin_list() + ")");
  }
  auto has = [&](const char* s) { return text.find(s) != std::string::npos; };
  if (has("<|im_start|>")) {
    ChatTemplate t(ChatFormat::ChatML, "chatml");
    for (const char* d : {"You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                          "You are a helpful assistant."})
      if (has(d)) return t.with_default_system(d);
    return t;
  }
  if (has("<|start_header_id|>")) return ChatTemplate(ChatFormat::Llama3, "llama3");
  if (has("<start_of_turn>")) return ChatTemplate(ChatFormat::Gemma, "gemma");
  if (has("<|end|>") && (has("<|assistant|>") || has("'<|' + message['role'] + '|>'")))
    return ChatTemplate(ChatFormat::Phi3, "phi3");
  if (has("[INST]")) return has("<<SYS>>") ? ChatTemplate(ChatFormat::Llama2, "llama2") : ChatTemplate(ChatFormat::Mistral, "mistral");
  fail(origin, "chat_template not recognised (" + std::to_string(text.size()) + " chars)",
       "choose one explicitly with --chat-template NAME; built-ins: " + builtin_list());
}

std::vector<ChatSegment> ChatTemplate::render_segments(const std::vector<ChatMessage>& m, bool gen) const {
  Out o;
  switch (format_) {
    case ChatFormat::ChatML: render_chatml(o, m, gen, default_system_); break;
    case ChatFormat::Llama3: render_llama3(o, m, gen); break;
    case ChatFormat::Llama2: render_inst(o, m, gen, true); break;
    case ChatFormat::Mistral: render_inst(o, m, gen, false); break;
    case ChatFormat::Gemma: render_gemma(o, m, gen); break;
    case ChatFormat::Phi3: render_phi3(o, m, gen); break;
    case ChatFormat::Plain: render_plain(o, m, gen); break;
  }
  return o.segs;
}

std::string ChatTemplate::render_text(const std::vector<ChatMessage>& m, bool gen) const {
  std::string s;
  for (const auto& seg : render_segments(m, gen)) s += seg.text;
  return s;
}

EncodedChat ChatTemplate::render(const Tokenizer& tok, const std::vector<ChatMessage>& m, bool gen) const {
  std::vector<ChatSegment> segs = render_segments(m, gen);
  std::string text;
  std::vector<size_t> starts;
  for (const auto& s : segs) {
    starts.push_back(text.size());
    text += s.text;
  }
  std::vector<std::pair<size_t, size_t>> offs;
  EncodedChat out;
  out.ids = tok.encode_with_offsets(text, false, &offs);
  out.roles.resize(out.ids.size(), Role::Template);
  size_t si = 0;
  for (size_t k = 0; k < out.ids.size(); ++k) {
    auto [b, e] = offs[k];
    while (si > 0 && starts[si] > b) --si;
    while (si + 1 < segs.size() && starts[si + 1] <= b) ++si;
    size_t cover[5] = {0, 0, 0, 0, 0};
    for (size_t j = si; j < segs.size() && starts[j] < std::max(e, b + 1); ++j) {
      size_t sb = std::max(b, starts[j]), se = std::min(e, starts[j] + segs[j].text.size());
      if (se > sb) cover[size_t(segs[j].role)] += se - sb;
      else if (e == b && starts[j] <= b) cover[size_t(segs[j].role)] += 1;
    }
    size_t best = 0;
    for (size_t r = 1; r < 5; ++r)
      if (cover[r] > cover[best] || (best == 0 && cover[r] > 0)) best = r;
    out.roles[k] = Role(best);
  }
  return out;
}

}  // namespace prefopt
