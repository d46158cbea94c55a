// Chat templates. A tokenizer's own Jinja template is rendered by tokenizer/jinja.h with the
// variables transformers passes (special tokens, messages, tools, documents=None,
// add_generation_prompt, extra kwargs); per-token roles come from rendering prefixes of the
// conversation (see jinja_segments below and docs/tokenizer.md).
// Built-in renderers, for tokenizers without a template (one function per format):
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

#include <optional>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/jinja.h"
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

// ---- Jinja templates

using ojson = nlohmann::ordered_json;

struct ChatTemplate::JinjaState {
  std::string origin;
  // One template (name "") or transformers' named list ("default", "tool_use", ...).
  std::vector<std::pair<std::string, std::shared_ptr<const jinja::Template>>> templates;
  std::string default_text;
  ojson special = ojson::object();  // bos_token, eos_token, ... as template variables

  // transformers: "tool_use" when tools are given and it exists, else "default".
  const jinja::Template& pick(bool has_tools) const {
    if (templates.size() == 1 && templates[0].first.empty()) return *templates[0].second;
    if (has_tools)
      for (auto& [n, t] : templates)
        if (n == "tool_use") return *t;
    for (auto& [n, t] : templates)
      if (n == "default") return *t;
    std::string names;
    for (auto& nt : templates) names += (names.empty() ? "" : ", ") + nt.first;
    fail(origin, "has several named chat templates (" + names + ") and none is named \"default\"",
         "name one of them \"default\", or pass --chat-template FILE.jinja");
  }
};

namespace {

std::string parent_dir(const std::string& path) {
  size_t k = path.find_last_of('/');
  return k == std::string::npos ? "." : path.substr(0, k);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

ojson read_json_file(const std::string& path) {
  try {
    return ojson::parse(read_file(path));
  } catch (const ojson::exception& e) {
    fail(path, fmt::format("not valid JSON: {}", e.what()), "fix the file (it must be one JSON object)");
  }
}

// Special tokens as transformers' special_tokens_map: strings or AddedToken dicts ({"content"}).
void read_special_tokens(const ojson& j, ojson& out) {
  if (!j.is_object()) return;
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (it->is_string()) out[key] = *it;
    else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) out[key] = (*it)["content"];
  }
  auto it = j.find("additional_special_tokens");
  if (it != j.end() && it->is_array()) {
    ojson arr = ojson::array();
    for (auto& e : *it) {
      if (e.is_string()) arr.push_back(e);
      else if (e.is_object() && e.contains("content") && e["content"].is_string()) arr.push_back(e["content"]);
    }
    out["additional_special_tokens"] = arr;
  }
}

// special_tokens_map.json, then tokenizer_config.json (which wins), in `dir`.
ojson special_tokens_in(const std::string& dir) {
  ojson out = ojson::object();
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    std::string p = dir + "/" + name;
    if (file_exists(p)) read_special_tokens(read_json_file(p), out);
  }
  return out;
}

ojson to_json_messages(const std::vector<ChatMessage>& m) {
  ojson arr = ojson::array();
  for (auto& x : m) arr.push_back(ojson{{"role", x.role}, {"content", x.content}});
  return arr;
}

Role lenient_role(const ojson& msg) {
  if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string()) return Role::Template;
  const std::string r = msg["role"].get<std::string>();
  if (r == "system" || r == "developer") return Role::System;
  if (r == "user") return Role::User;
  if (r == "assistant") return Role::Assistant;
  if (r == "tool" || r == "ipython") return Role::Tool;
  return Role::Template;
}

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

}  // namespace

ojson ChatTemplate::special_tokens(const std::string& dir) { return special_tokens_in(dir); }

ChatTemplate ChatTemplate::from_jinja(const std::string& text, const std::string& origin, const ojson& special) {
  auto st = std::make_shared<JinjaState>();
  st->origin = origin;
  st->templates.emplace_back("", std::make_shared<const jinja::Template>(text, origin));
  st->default_text = text;
  if (special.is_object()) st->special = special;
  ChatTemplate t(ChatFormat::Jinja, "jinja");
  t.jinja_ = std::move(st);
  return t;
}

namespace {

// The chat template of a tokenizer_config.json (chat_template.jinja beside it wins, as
// transformers saves it there), with the special tokens of that directory.
std::optional<ChatTemplate> load_config_template(const std::string& cfg_path, bool required) {
  const std::string dir = parent_dir(cfg_path);
  ojson special = special_tokens_in(dir);
  const std::string jinja_file = dir + "/chat_template.jinja";
  if (file_exists(jinja_file)) return ChatTemplate::from_jinja(read_file(jinja_file), jinja_file, special);
  ojson cfg = file_exists(cfg_path) ? read_json_file(cfg_path) : ojson::object();
  auto it = cfg.is_object() ? cfg.find("chat_template") : cfg.end();
  if (it == cfg.end() || it->is_null()) {
    if (!required) return std::nullopt;
    fail(cfg_path, "has no chat_template", "pass --chat-template FILE.jinja, or a built-in name (" + fmt::format("{}", fmt::join(ChatTemplate::builtin_names(), ", ")) + ")");
  }
  if (it->is_string()) return ChatTemplate::from_jinja(it->get<std::string>(), cfg_path + " chat_template", special);
  if (it->is_array()) {
    std::vector<std::pair<std::string, std::string>> named;
    for (auto& e : *it) {
      if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["name"].is_string() ||
          !e["template"].is_string())
        fail(cfg_path, "chat_template is a list whose entries are not {\"name\": ..., \"template\": ...}",
             "each entry needs a string \"name\" and a string \"template\"");
      named.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
    }
    if (named.empty()) fail(cfg_path, "chat_template is an empty list", "give at least a \"default\" template");
    return ChatTemplate::from_named(named, cfg_path, special);
  }
  fail(cfg_path, fmt::format("chat_template must be a string or a list of named templates, found {}", it->type_name()),
       "see transformers' tokenizer_config.json format");
}

}  // namespace

ChatTemplate ChatTemplate::from_named(const std::vector<std::pair<std::string, std::string>>& named,
                                      const std::string& origin, const ojson& special) {
  auto st = std::make_shared<JinjaState>();
  st->origin = origin;
  for (auto& [n, text] : named) {
    st->templates.emplace_back(n, std::make_shared<const jinja::Template>(text, origin + " chat_template \"" + n + "\""));
    if (n == "default") st->default_text = text;
  }
  if (special.is_object()) st->special = special;
  ChatTemplate t(ChatFormat::Jinja, "jinja");
  t.jinja_ = std::move(st);
  return t;
}

ChatTemplate ChatTemplate::detect(const std::string& arg) {
  const bool maybe_path = arg.size() < 4096 && arg.find('{') == std::string::npos && arg.find('\n') == std::string::npos;
  if (maybe_path && is_directory(arg)) {
    if (auto t = load_config_template(arg + "/tokenizer_config.json", false)) return *t;
    fail(arg, "has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja)",
         "pass --chat-template FILE.jinja, or a built-in name (" + fmt::format("{}", fmt::join(builtin_names(), ", ")) + ")");
  }
  if (maybe_path && file_exists(arg)) {
    if (ends_with(arg, ".jinja") || ends_with(arg, ".j2"))
      return from_jinja(read_file(arg), arg, special_tokens_in(parent_dir(arg)));
    return *load_config_template(arg, true);
  }
  if (maybe_path && (ends_with(arg, ".json") || ends_with(arg, ".jinja")))
    fail(arg, "no such file", "pass an existing tokenizer_config.json, model directory or .jinja file");
  return from_jinja(arg, "chat_template", ojson::object());
}

ChatTemplate ChatTemplate::from_arg(const std::string& s) {
  for (auto& b : builtin_names())
    if (s == b) return by_name(s);
  if (file_exists(s) || is_directory(s)) return detect(s);
  try {
    return by_name(s);
  } catch (const Error&) {
    fail("--chat-template", fmt::format("\"{}\" is neither a built-in template nor an existing file", s),
         "built-ins: " + fmt::format("{}", fmt::join(builtin_names(), ", ")) +
             "; or a .jinja file, a tokenizer_config.json or a model directory");
  }
}

ChatTemplate ChatTemplate::from_tokenizer(const Tokenizer& tok) {
  const std::string& src = tok.source();
  const std::string dir = is_directory(src) ? src : parent_dir(src);
  if (auto t = load_config_template(dir + "/tokenizer_config.json", false)) return *t;
  if (!tok.chat_template_text().empty()) {
    ojson special = ojson::object();
    if (auto b = tok.bos_id()) special["bos_token"] = tok.id_to_token(*b);
    if (auto e = tok.eos_id()) special["eos_token"] = tok.id_to_token(*e);
    if (auto u = tok.unk_id()) special["unk_token"] = tok.id_to_token(*u);
    if (auto p = tok.pad_id()) special["pad_token"] = tok.id_to_token(*p);
    return from_jinja(tok.chat_template_text(), src + " chat_template", special);
  }
  fail(src, "has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja)",
       "pass --chat-template FILE.jinja, or a built-in name (" + fmt::format("{}", fmt::join(builtin_names(), ", ")) + ")");
}

const std::string& ChatTemplate::template_text() const {
  static const std::string empty;
  return jinja_ ? jinja_->default_text : empty;
}

namespace {

ojson render_vars(const ojson& special, const ojson& messages, const ojson& tools, bool gen, const ojson& kwargs) {
  ojson v = special;
  if (kwargs.is_object())
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) v[it.key()] = it.value();
  v["messages"] = messages;
  v["tools"] = tools.is_array() ? tools : ojson();
  v["documents"] = nullptr;
  v["add_generation_prompt"] = gen;
  return v;
}

}  // namespace

std::string ChatTemplate::render_json(const ojson& messages, const ojson& tools, bool gen, const ojson& kwargs) const {
  if (format_ != ChatFormat::Jinja) {
    std::string s;
    for (auto& seg : render_segments_json(messages, tools, gen, kwargs)) s += seg.text;
    return s;
  }
  const bool has_tools = tools.is_array() && !tools.empty();
  return jinja_->pick(has_tools).render(render_vars(jinja_->special, messages, tools, gen, kwargs)).text;
}

// Roles for a Jinja rendering. F = render(all messages). For message i, R_i = render(first
// i+1 messages) without the generation prompt; the bytes of F up to the common prefix of
// R_i and F belong to messages 0..i, so message i owns [end_{i-1}, end_i). Inside that
// region the message's content (found as written, else stripped) takes the message's role
// and the rest is Template. An assistant message owns, instead, everything after the
// generation prompt that render(first i messages, add_generation_prompt=True) ends with,
// up to its region's end less trailing whitespace: the reply, its tool calls and its
// end-of-turn marker. A template with {% generation %} blocks marks the assistant output
// itself: then exactly the bytes inside those blocks are Assistant.
std::vector<ChatSegment> ChatTemplate::render_segments_json(const ojson& messages, const ojson& tools, bool gen,
                                                            const ojson& kwargs) const {
  if (format_ != ChatFormat::Jinja) {
    std::vector<ChatMessage> m;
    for (auto& x : messages) {
      ChatMessage cm;
      if (x.contains("role") && x["role"].is_string()) cm.role = x["role"].get<std::string>();
      if (x.contains("content") && x["content"].is_string()) cm.content = x["content"].get<std::string>();
      m.push_back(cm);
    }
    return render_segments(m, gen);
  }
  if (!messages.is_array()) fail("chat template", "messages must be a JSON array", "TRL conversational format");
  const bool has_tools = tools.is_array() && !tools.empty();
  const jinja::Template& t = jinja_->pick(has_tools);
  auto render = [&](size_t count, bool g) {
    ojson part = ojson::array();
    for (size_t k = 0; k < count; ++k) part.push_back(messages[k]);
    return t.render(render_vars(jinja_->special, part, tools, g, kwargs));
  };
  auto try_render = [&](size_t count, bool g) -> std::optional<std::string> {
    try {
      return render(count, g).text;
    } catch (const Error&) {
      return std::nullopt;  // a prefix the template rejects: that boundary stays unknown
    }
  };
  const size_t n = messages.size();
  jinja::RenderOutput full = render(n, gen);
  const std::string& F = full.text;
  auto lcp = [&](const std::string& a) {
    size_t k = 0, m = std::min(a.size(), F.size());
    while (k < m && a[k] == F[k]) ++k;
    return k;
  };
  std::vector<Role> role(F.size(), Role::Template);
  size_t prev = 0;
  for (size_t i = 0; i < n; ++i) {
    std::optional<std::string> ri = (i + 1 == n && !gen) ? std::optional<std::string>(F) : try_render(i + 1, false);
    size_t end = ri ? std::max(prev, lcp(*ri)) : prev;
    const ojson& msg = messages[i];
    Role r = lenient_role(msg);
    if (r == Role::Assistant) {
      size_t h = prev;
      if (auto p = try_render(i, true)) h = std::clamp(lcp(*p), prev, end);
      size_t e = end;
      while (e > h && is_ws(F[e - 1])) --e;
      std::fill(role.begin() + long(h), role.begin() + long(e), Role::Assistant);
    } else if (r != Role::Template && msg.contains("content") && msg["content"].is_string()) {
      std::string c = msg["content"].get<std::string>();
      size_t b = 0, e = c.size();
      size_t at = c.empty() ? std::string::npos : F.substr(prev, end - prev).find(c);
      if (at == std::string::npos) {
        while (b < e && is_ws(c[b])) ++b;
        while (e > b && is_ws(c[e - 1])) --e;
        c = c.substr(b, e - b);
        at = c.empty() ? std::string::npos : F.substr(prev, end - prev).find(c);
      }
      if (at != std::string::npos)
        std::fill(role.begin() + long(prev + at), role.begin() + long(prev + at + c.size()), r);
    }
    prev = end;
  }
  if (t.has_generation_tag()) {
    for (auto& x : role)
      if (x == Role::Assistant) x = Role::Template;
    for (auto [b, e] : full.generation) std::fill(role.begin() + long(b), role.begin() + long(e), Role::Assistant);
  }
  std::vector<ChatSegment> segs;
  for (size_t k = 0; k < F.size();) {
    size_t j = k;
    while (j < F.size() && role[j] == role[k]) ++j;
    segs.push_back({F.substr(k, j - k), role[k]});
    k = j;
  }
  std::string joined;
  for (auto& sg : segs) joined += sg.text;
  PREFOPT_CHECK(joined == F, "internal: chat template segments do not concatenate to the rendering");
  return segs;
}

std::vector<ChatSegment> ChatTemplate::render_segments(const std::vector<ChatMessage>& m, bool gen) const {
  if (format_ == ChatFormat::Jinja) return render_segments_json(to_json_messages(m), ojson(), gen, ojson::object());
  Out o;
  switch (format_) {
    case ChatFormat::ChatML: render_chatml(o, m, gen, default_system_); break;
    case ChatFormat::Llama3: render_llama3(o, m, gen); break;
    case ChatFormat::Llama2: render_inst(o, m, gen, true); break;
    case ChatFormat::Mistral: render_inst(o, m, gen, false); break;
    case ChatFormat::Gemma: render_gemma(o, m, gen); break;
    case ChatFormat::Phi3: render_phi3(o, m, gen); break;
    case ChatFormat::Plain: render_plain(o, m, gen); break;
    case ChatFormat::Jinja: break;
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
