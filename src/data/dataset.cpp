#include "data/dataset.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "data/formats.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace prefopt {

DataKind data_kind_for_method(const std::string& m) {
  if (m == "dpo" || m == "cpo" || m == "simpo" || m == "orpo") return DataKind::Paired;
  if (m == "tpo") return DataKind::Triple;
  if (m == "kto" || m == "bco") return DataKind::Unpaired;
  if (m == "sft") return DataKind::Sft;
  fail("--method", "unknown method \"" + m + "\"", "use one of dpo, kto, bco, tpo, orpo, cpo, simpo, sft");
}

const char* to_string(DataKind k) {
  switch (k) {
    case DataKind::Paired: return "paired {prompt, chosen, rejected}";
    case DataKind::Triple: return "triple {prompt, chosen, rejected, reference}";
    case DataKind::Unpaired: return "unpaired {prompt, completion, label}";
    case DataKind::Sft: return "sft {prompt, completion} | {messages} | {text}";
  }
  return "?";
}

int64_t Example::tokens() const {
  int64_t n = static_cast<int64_t>(prompt.size());
  for (auto& c : completions) n += static_cast<int64_t>(c.ids.size());
  return n;
}

std::string fnv1a_hex(const std::string& bytes, uint64_t h) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

size_t implicit_prompt_length(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  if (i < n && i > 0 && a[i - 1] == ' ') --i;
  return i;
}

namespace {

struct Ctx {
  const std::string& file;
  size_t line;
  const Tokenizer* tok;
  const ChatTemplate* tmpl;
  const DataOptions& opt;
  int64_t vocab;
};

const std::string kFormats =
    "paired rows need prompt/chosen/rejected (text or lists of {role, content}), or "
    "prompt_input_ids/chosen_input_ids/rejected_input_ids; unpaired rows prompt/completion/label";

const json& field(const Ctx& c, const json& row, const char* key) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null())
    fail(where(c.file, c.line), fmt::format("missing field \"{}\"", key), kFormats);
  if ((it->is_string() || it->is_array()) && it->empty())
    fail(where(c.file, c.line), fmt::format("field \"{}\" is empty", key), "remove the row or fill the field");
  if (!it->is_string() && !it->is_array())
    fail(where(c.file, c.line), fmt::format("field \"{}\" must be a string, a list of messages or a list of ids, found {}",
                                            key, it->type_name()),
         kFormats);
  return *it;
}

std::vector<int32_t> ids_field(const Ctx& c, const json& row, const char* key, bool allow_empty) {
  auto it = row.find(key);
  if (it == row.end()) fail(where(c.file, c.line), fmt::format("missing field \"{}\"", key), kFormats);
  if (!it->is_array())
    fail(where(c.file, c.line), fmt::format("field \"{}\" must be a list of token ids, found {}", key, it->type_name()),
         "pre-tokenized rows hold lists of integers");
  if (it->empty() && !allow_empty) fail(where(c.file, c.line), fmt::format("field \"{}\" is empty", key), "remove the row");
  std::vector<int32_t> out;
  for (auto& v : *it) {
    if (!v.is_number_integer())
      fail(where(c.file, c.line), fmt::format("field \"{}\" holds a non-integer ({})", key, v.dump()),
           "pre-tokenized rows hold lists of integers");
    int64_t x = v.get<int64_t>();
    if (x < 0 || (c.vocab > 0 && x >= c.vocab))
      fail(where(c.file, c.line), fmt::format("field \"{}\": token id {} is outside the vocabulary [0, {})", key, x, c.vocab),
           "these ids were made with another tokenizer, or the model is the wrong one");
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

std::vector<ChatMessage> messages(const Ctx& c, const json& v, const char* key) {
  std::vector<ChatMessage> out;
  for (auto& m : v) {
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      fail(where(c.file, c.line), fmt::format("field \"{}\": every message needs string \"role\" and \"content\"", key),
           "conversational rows are lists of {\"role\": ..., \"content\": ...}");
    std::string role = m["role"].get<std::string>();
    try {
      (void)parse_role(role);
    } catch (const Error& e) {
      fail(where(c.file, c.line), fmt::format("field \"{}\": unknown role \"{}\"", key, role),
           "roles are system, user, assistant, tool");
    }
    out.push_back({role, m["content"].get<std::string>()});
  }
  return out;
}

const Tokenizer& need_tok(const Ctx& c) {
  if (!c.tok)
    fail(where(c.file, c.line), "a text row, but no tokenizer was found",
         "put tokenizer.json in the model directory (or pass --tokenizer DIR), or use pre-tokenized rows");
  return *c.tok;
}
const ChatTemplate& need_tmpl(const Ctx& c) {
  if (!c.tmpl)
    fail(where(c.file, c.line), "a conversational row, but the model has no chat template",
         "pass --chat_template NAME (chatml, llama3, llama2, mistral, gemma, phi3, plain)");
  return *c.tmpl;
}

Completion plain_completion(std::vector<int32_t> ids) {
  Completion comp;
  comp.mask.assign(ids.size(), 1);
  comp.ids = std::move(ids);
  return comp;
}

// A pre-tokenized completion "<name>_input_ids" with its optional "<name>_loss_mask"
// (0/1 per token, e.g. tool observations masked in a round's pairs.jsonl).
Completion pretok_completion(const Ctx& c, const json& row, const std::string& name) {
  Completion comp = plain_completion(ids_field(c, row, (name + "_input_ids").c_str(), false));
  const std::string key = name + "_loss_mask";
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return comp;
  if (!it->is_array() || it->size() != comp.ids.size())
    fail(where(c.file, c.line),
         fmt::format("field \"{}\" must be a list of {} values 0/1 (one per token of \"{}_input_ids\")", key,
                     comp.ids.size(), name),
         "write one mask value per token, or drop the field to score every token");
  for (size_t i = 0; i < comp.ids.size(); ++i) {
    const json& v = (*it)[i];
    if (v.is_boolean()) {
      comp.mask[i] = v.get<bool>();
    } else if (v.is_number_integer() && (v.get<int64_t>() == 0 || v.get<int64_t>() == 1)) {
      comp.mask[i] = static_cast<uint8_t>(v.get<int64_t>());
    } else {
      fail(where(c.file, c.line), fmt::format("field \"{}\" holds {} (position {})", key, v.dump(), i),
           "loss masks hold 0 or 1 (1 = the token is scored)");
    }
  }
  return comp;
}

// Text prompt: BOS + ids; text completion: ids + EOS (TRL >= 0.12 tokenize_row).
std::vector<int32_t> text_prompt(const Ctx& c, const std::string& s) {
  const Tokenizer& t = need_tok(c);
  std::vector<int32_t> ids;
  if (auto b = t.bos_id()) ids.push_back(*b);
  auto e = t.encode(s, false);
  ids.insert(ids.end(), e.begin(), e.end());
  return ids;
}
Completion text_completion(const Ctx& c, const std::string& s) {
  const Tokenizer& t = need_tok(c);
  auto ids = t.encode(s, false);
  if (auto e = t.eos_id()) ids.push_back(*e);
  return plain_completion(std::move(ids));
}

// Conversation prompt + completion rendered jointly; the completion is what
// follows the prompt's rendering with the generation prompt.
Completion chat_completion(const Ctx& c, const std::vector<ChatMessage>& prompt, const std::vector<ChatMessage>& comp,
                           const std::vector<int32_t>& prompt_ids, const char* key) {
  std::vector<ChatMessage> all = prompt;
  all.insert(all.end(), comp.begin(), comp.end());
  EncodedChat full = need_tmpl(c).render(need_tok(c), all, false);
  size_t n = prompt_ids.size();
  if (full.ids.size() < n || !std::equal(prompt_ids.begin(), prompt_ids.end(), full.ids.begin()))
    fail(where(c.file, c.line),
         fmt::format("field \"{}\": the rendered prompt is not a prefix of the rendered conversation", key),
         "the chat template changes earlier turns when a reply is added; use text or pre-tokenized rows");
  Completion out;
  out.ids.assign(full.ids.begin() + n, full.ids.end());
  for (size_t i = n; i < full.ids.size(); ++i) {
    Role r = full.roles[i];
    out.mask.push_back(r == Role::Assistant || (r == Role::Tool && !c.opt.mask_tool_observations));
  }
  return out;
}

// One example from a row. Returns false when it must be skipped (counted).
bool build(const Ctx& c, const json& row, DataKind kind, Example& ex, bool& pretok) {
  if (!row.is_object()) fail(where(c.file, c.line), "expected a JSON object", kFormats);
  pretok = row.contains("prompt_input_ids") || row.contains("completion_input_ids") || row.contains("chosen_input_ids");
  auto label_of = [&]() {
    auto it = row.find("label");
    if (it == row.end()) fail(where(c.file, c.line), "missing field \"label\"", "unpaired rows need \"label\": true or false");
    if (!it->is_boolean() && !(it->is_number_integer() && (it->get<int>() == 0 || it->get<int>() == 1)))
      fail(where(c.file, c.line), fmt::format("field \"label\" must be true or false, found {}", it->dump()),
           "label true = desirable, false = undesirable");
    return it->is_boolean() ? (it->get<bool>() ? 1 : 0) : it->get<int>();
  };
  if (pretok) {
    ex.prompt = ids_field(c, row, "prompt_input_ids", kind == DataKind::Sft);
    if (kind == DataKind::Paired || kind == DataKind::Triple) {
      ex.completions.push_back(pretok_completion(c, row, "chosen"));
      ex.completions.push_back(pretok_completion(c, row, "rejected"));
      if (kind == DataKind::Triple) ex.completions.push_back(pretok_completion(c, row, "reference"));
    } else {
      ex.completions.push_back(pretok_completion(c, row, "completion"));
      if (kind == DataKind::Unpaired) ex.label = label_of();
    }
    return true;
  }
  if (kind == DataKind::Sft && row.contains("messages")) {
    const json& m = field(c, row, "messages");
    if (!m.is_array()) fail(where(c.file, c.line), "field \"messages\" must be a list of messages", kFormats);
    EncodedChat e = need_tmpl(c).render(need_tok(c), messages(c, m, "messages"), false);
    Completion comp;
    comp.ids = e.ids;
    for (Role r : e.roles) comp.mask.push_back(r == Role::Assistant || (r == Role::Tool && !c.opt.mask_tool_observations));
    ex.completions.push_back(std::move(comp));
    return true;
  }
  if (kind == DataKind::Sft && row.contains("text") && !row.contains("prompt")) {
    const json& t = field(c, row, "text");
    if (!t.is_string()) fail(where(c.file, c.line), "field \"text\" must be a string", kFormats);
    ex.prompt = text_prompt(c, "");
    ex.completions.push_back(text_completion(c, t.get<std::string>()));
    return true;
  }
  std::vector<const char*> keys;
  if (kind == DataKind::Paired) keys = {"chosen", "rejected"};
  if (kind == DataKind::Triple) keys = {"chosen", "rejected", "reference"};
  if (kind == DataKind::Unpaired || kind == DataKind::Sft) keys = {"completion"};
  std::vector<const json*> vals;
  for (auto* k : keys) vals.push_back(&field(c, row, k));
  const bool conv = vals[0]->is_array();
  for (size_t i = 0; i < vals.size(); ++i)
    if (vals[i]->is_array() != conv)
      fail(where(c.file, c.line), fmt::format("field \"{}\" is {} but \"{}\" is {}", keys[i],
                                              vals[i]->is_array() ? "conversational" : "text", keys[0],
                                              conv ? "conversational" : "text"),
           "use one format per row");
  const bool has_prompt = row.contains("prompt");
  if (!has_prompt && kind != DataKind::Paired)
    fail(where(c.file, c.line), "missing field \"prompt\"", kFormats);
  if (kind == DataKind::Unpaired) ex.label = label_of();
  if (!conv) {
    std::vector<std::string> comps;
    for (auto* v : vals) comps.push_back(v->get<std::string>());
    std::string prompt;
    if (has_prompt) {
      const json& p = field(c, row, "prompt");
      if (!p.is_string()) fail(where(c.file, c.line), "field \"prompt\" is conversational but the completions are text", "use one format per row");
      prompt = p.get<std::string>();
    } else {  // implicit prompt
      size_t n = implicit_prompt_length(comps[0], comps[1]);
      prompt = comps[0].substr(0, n);
      comps[0] = comps[0].substr(n), comps[1] = comps[1].substr(n);
      if (prompt.empty()) fail(where(c.file, c.line), "no prompt field and chosen/rejected share no prefix", "add a \"prompt\" field");
      if (comps[0].empty() || comps[1].empty()) {
        warn("{}: chosen and rejected are identical; row skipped", where(c.file, c.line));
        return false;
      }
    }
    ex.prompt = text_prompt(c, prompt);
    for (auto& s : comps) ex.completions.push_back(text_completion(c, s));
    return true;
  }
  std::vector<std::vector<ChatMessage>> comps;
  for (size_t i = 0; i < vals.size(); ++i) comps.push_back(messages(c, *vals[i], keys[i]));
  std::vector<ChatMessage> prompt;
  if (has_prompt) {
    const json& p = field(c, row, "prompt");
    if (!p.is_array()) fail(where(c.file, c.line), "field \"prompt\" is text but the completions are conversational", "use one format per row");
    prompt = messages(c, p, "prompt");
  } else {  // implicit prompt: the shared leading messages
    size_t n = 0;
    while (n < comps[0].size() && n < comps[1].size() && comps[0][n].role == comps[1][n].role &&
           comps[0][n].content == comps[1][n].content)
      ++n;
    prompt.assign(comps[0].begin(), comps[0].begin() + n);
    for (auto& cm : comps) cm.erase(cm.begin(), cm.begin() + n);
    if (prompt.empty()) fail(where(c.file, c.line), "no prompt field and chosen/rejected share no leading message", "add a \"prompt\" field");
  }
  for (size_t i = 0; i < comps.size(); ++i)
    if (comps[i].empty()) fail(where(c.file, c.line), fmt::format("field \"{}\" has no message after the prompt", keys[i]), "remove the row");
  ex.prompt = need_tmpl(c).render(need_tok(c), prompt, true).ids;
  for (size_t i = 0; i < comps.size(); ++i) ex.completions.push_back(chat_completion(c, prompt, comps[i], ex.prompt, keys[i]));
  return true;
}

}  // namespace

Dataset load_dataset(const std::string& path, DataKind kind, const Tokenizer* tok, const ChatTemplate* tmpl,
                     const DataOptions& opt, int64_t vocab_size) {
  if (opt.truncation_mode != "keep_end" && opt.truncation_mode != "keep_start")
    fail("truncation_mode", "unknown value \"" + opt.truncation_mode + "\"", "use keep_end or keep_start");
  PREFOPT_CHECK(opt.max_length > 1, "max_length must be > 1 (got {})", opt.max_length);
  Dataset ds;
  ds.path = path;
  ds.kind = kind;
  ds.hash = fnv1a_hex(read_maybe_gz(path) + fmt::format("|{}|{}|{}|{}|{}|{}", static_cast<int>(kind), opt.max_length,
                                                         opt.max_prompt_length, opt.max_completion_length,
                                                         opt.truncation_mode, opt.mask_tool_observations));
  size_t warned = 0;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    Ctx c{path, line, tok, tmpl, opt, vocab_size};
    Example ex;
    ex.line = line;
    bool pretok = false;
    if (!build(c, to_trl_row(row, kind, path, line), kind, ex, pretok)) {
      ++ds.skipped;
      return;
    }
    ds.pretokenized += pretok;
    bool cut = false;
    if (opt.max_prompt_length > 0 && static_cast<int64_t>(ex.prompt.size()) > opt.max_prompt_length) {
      cut = true;
      if (opt.truncation_mode == "keep_end")
        ex.prompt.erase(ex.prompt.begin(), ex.prompt.end() - opt.max_prompt_length);
      else
        ex.prompt.resize(opt.max_prompt_length);
    }
    if (static_cast<int64_t>(ex.prompt.size()) >= opt.max_length) {
      if (warned++ < 5)
        warn("{}: prompt of {} tokens leaves no room under max_length {}; row skipped (raise max_length or set "
             "max_prompt_length)", where(path, line), ex.prompt.size(), opt.max_length);
      ++ds.skipped;
      return;
    }
    int64_t room = opt.max_length - static_cast<int64_t>(ex.prompt.size());
    if (opt.max_completion_length > 0) room = std::min(room, opt.max_completion_length);
    for (auto& cm : ex.completions)
      if (static_cast<int64_t>(cm.ids.size()) > room) {
        cm.ids.resize(room), cm.mask.resize(room);
        cut = true;
      }
    bool scored = true;
    for (auto& cm : ex.completions) scored = scored && std::count(cm.mask.begin(), cm.mask.end(), 1) > 0;
    if (!scored) {
      if (warned++ < 5) warn("{}: a completion has no scored token after truncation/masking; row skipped", where(path, line));
      ++ds.skipped;
      return;
    }
    ds.truncated += cut;
    ds.rows.push_back(std::move(ex));
  });
  if (ds.rows.empty())
    fail(path, fmt::format("no usable rows ({} skipped)", ds.skipped), "the file must hold " + std::string(to_string(kind)) + " rows");
  if (kind == DataKind::Unpaired) {
    size_t pos = 0;
    for (auto& r : ds.rows) pos += r.label == 1;
    if (pos == 0 || pos == ds.rows.size())
      warn("{}: all {} rows have label {}; KTO/BCO expect both desirable and undesirable rows", path, ds.rows.size(),
           pos ? "true" : "false");
  }
  info("data: {} rows from {} ({}; {} skipped, {} truncated, {} pre-tokenized)", ds.rows.size(), path, to_string(kind),
       ds.skipped, ds.truncated, ds.pretokenized);
  return ds;
}

}  // namespace prefopt
