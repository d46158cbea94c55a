#include "data/formats.h"

#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"

namespace prefopt {

namespace {

using json = nlohmann::json;

struct At {
  const std::string& file;
  size_t line;
  std::string w() const { return where(file, line); }
};

const char* kHint =
    "LLaMA-Factory rows are sharegpt ({conversations, chosen, rejected} / {messages, label}) or alpaca "
    "({instruction, input, chosen, rejected}); see docs/training.md";

std::string map_role(const At& at, const std::string& r) {
  if (r == "human" || r == "user") return "user";
  if (r == "gpt" || r == "assistant" || r == "function_call" || r == "model") return "assistant";
  if (r == "observation" || r == "tool" || r == "function") return "tool";
  if (r == "system") return "system";
  fail(at.w(), "unknown speaker \"" + r + "\"", "use human/gpt/system/observation/function_call (or user/assistant/tool)");
}

json message(const At& at, const json& m, const char* key) {
  if (!m.is_object()) fail(at.w(), std::string("field \"") + key + "\": a message must be an object", kHint);
  const bool sharegpt = m.contains("from");
  const char* rk = sharegpt ? "from" : "role";
  const char* ck = sharegpt ? "value" : "content";
  auto r = m.find(rk), c = m.find(ck);
  if (r == m.end() || !r->is_string() || c == m.end() || !c->is_string())
    fail(at.w(), std::string("field \"") + key + "\": every message needs string \"" + rk + "\" and \"" + ck + "\"", kHint);
  return {{"role", map_role(at, r->get<std::string>())}, {"content", c->get<std::string>()}};
}

json messages(const At& at, const json& v, const char* key) {
  if (!v.is_array()) fail(at.w(), std::string("field \"") + key + "\" must be a list of messages", kHint);
  json out = json::array();
  for (const auto& m : v) out.push_back(message(at, m, key));
  return out;
}

// "system" (a string) becomes the first message unless the conversation has one.
void add_system(const At& at, const json& row, json& msgs) {
  auto s = row.find("system");
  if (s == row.end() || s->is_null()) return;
  if (!s->is_string()) fail(at.w(), "field \"system\" must be a string", kHint);
  if (s->get_ref<const std::string&>().empty()) return;
  if (!msgs.empty() && msgs[0]["role"] == "system") return;
  msgs.insert(msgs.begin(), json{{"role", "system"}, {"content", *s}});
}

void warn_tools(const At& at, const json& row) {
  auto t = row.find("tools");
  if (t != row.end() && !t->is_null() && !(t->is_string() && t->get_ref<const std::string&>().empty())) {
    static bool once = false;
    if (!once) warn("{}: the row's \"tools\" are not passed to the chat template (only messages are rendered)", at.w());
    once = true;
  }
}

json label_of(const At& at, const json& row) {
  for (const char* k : {"label", "kto_tag"}) {
    auto it = row.find(k);
    if (it != row.end()) return *it;  // validated by the loader
  }
  fail(at.w(), "missing field \"label\" (or \"kto_tag\")", "unpaired rows need a boolean label");
}

json reply(const At& at, const json& v, const char* key) {
  // chosen / rejected: one message object, a list of them, or a plain string.
  if (v.is_string()) return json::array({json{{"role", "assistant"}, {"content", v}}});
  if (v.is_object()) return json::array({message(at, v, key)});
  return messages(at, v, key);
}

// Splits a conversation whose last message is the completion.
void split_last(const At& at, json msgs, json& prompt, json& completion) {
  if (msgs.size() < 2) fail(at.w(), "the conversation needs a prompt and a reply", kHint);
  if (msgs.back()["role"] != "assistant")
    fail(at.w(), "the last message must be the assistant's reply (the completion)", kHint);
  completion = json::array({msgs.back()});
  msgs.erase(msgs.end() - 1);
  prompt = std::move(msgs);
}

json from_conversation(const At& at, const json& row, json msgs, DataKind kind) {
  add_system(at, row, msgs);
  warn_tools(at, row);
  json out;
  if (kind == DataKind::Paired || kind == DataKind::Triple) {
    if (!row.contains("chosen") || !row.contains("rejected"))
      fail(at.w(), "a preference row needs \"chosen\" and \"rejected\"", kHint);
    out["prompt"] = std::move(msgs);
    out["chosen"] = reply(at, row["chosen"], "chosen");
    out["rejected"] = reply(at, row["rejected"], "rejected");
    if (row.contains("reference")) out["reference"] = reply(at, row["reference"], "reference");
  } else if (kind == DataKind::Unpaired) {
    split_last(at, std::move(msgs), out["prompt"], out["completion"]);
    out["label"] = label_of(at, row);
  } else {
    out["messages"] = std::move(msgs);
  }
  return out;
}

json from_alpaca(const At& at, const json& row, DataKind kind) {
  auto str = [&](const char* k) -> std::string {
    auto it = row.find(k);
    if (it == row.end() || it->is_null()) return "";
    if (!it->is_string()) fail(at.w(), std::string("field \"") + k + "\" must be a string", kHint);
    return it->get<std::string>();
  };
  json msgs = json::array();
  if (auto h = row.find("history"); h != row.end() && !h->is_null()) {
    if (!h->is_array()) fail(at.w(), "field \"history\" must be a list of [query, reply] pairs", kHint);
    for (const auto& turn : *h) {
      if (!turn.is_array() || turn.size() != 2 || !turn[0].is_string() || !turn[1].is_string())
        fail(at.w(), "field \"history\" must be a list of [query, reply] pairs", kHint);
      msgs.push_back({{"role", "user"}, {"content", turn[0]}});
      msgs.push_back({{"role", "assistant"}, {"content", turn[1]}});
    }
  }
  std::string q = str("instruction"), in = str("input");
  if (!in.empty()) q = q.empty() ? in : q + "\n" + in;
  if (q.empty()) fail(at.w(), "field \"instruction\" is empty", kHint);
  msgs.push_back({{"role", "user"}, {"content", q}});
  if (kind != DataKind::Paired && kind != DataKind::Triple) {
    std::string o = str("output");
    if (o.empty()) fail(at.w(), "missing field \"output\"", kHint);
    msgs.push_back({{"role", "assistant"}, {"content", o}});
  }
  return from_conversation(at, row, std::move(msgs), kind);
}

}  // namespace

json to_trl_row(const json& row, DataKind kind, const std::string& file, size_t line) {
  if (!row.is_object()) return row;  // the loader reports it
  const At at{file, line};
  if (row.contains("conversations")) return from_conversation(at, row, messages(at, row["conversations"], "conversations"), kind);
  if (row.contains("instruction") && !row.contains("prompt")) return from_alpaca(at, row, kind);
  // LLaMA-Factory KTO / preference rows under "messages" (TRL's "messages" is SFT only).
  if (row.contains("messages") && !row.contains("prompt") && kind != DataKind::Sft)
    return from_conversation(at, row, messages(at, row["messages"], "messages"), kind);
  if (kind == DataKind::Unpaired && row.contains("kto_tag") && !row.contains("label")) {
    json out = row;
    out["label"] = row["kto_tag"];
    return out;
  }
  return row;
}

}  // namespace prefopt
