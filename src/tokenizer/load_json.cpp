// tokenizer.json (HF `tokenizers` serialization) -> TokenizerImpl, and back (save).
// Supported: model BPE; normalizers Sequence/Prepend/Replace/Lowercase/Strip/NFC/NFD/NFKC/NFKD
// (the Unicode normal forms and full lowercase through utf8proc);
// pre-tokenizers Sequence/Split/ByteLevel/Digits/Punctuation/Metaspace/Whitespace/
// WhitespaceSplit; post-processors TemplateProcessing/ByteLevel/Roberta/Bert/Sequence;
// decoders ByteLevel/Replace/ByteFallback/Fuse/Strip/Metaspace/Sequence.
#include <algorithm>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace prefopt {

const char* const kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace {

std::string str_or(const json& j, const char* k, const std::string& d) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : d;
}
bool bool_or(const json& j, const char* k, bool d) { return j.contains(k) && j[k].is_boolean() ? j[k].get<bool>() : d; }

std::string escape_regex(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) o += '\\';
    o += c;
  }
  return o;
}

[[noreturn]] void unsupported(const std::string& origin, const std::string& what, const std::string& type) {
  fail(origin, fmt::format("unsupported {} type {:?}", what, type),
       "prefopt supports BPE tokenizers (byte-level and SentencePiece-style); convert the tokenizer with HF "
       "`tokenizers` to one of the documented component types (docs/tokenizer.md)");
}

SplitBehavior parse_behavior(const std::string& s, const std::string& origin) {
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  fail(origin, fmt::format("unknown split behavior {:?}", s),
       "expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
}

std::string pattern_of(const json& p, bool* is_regex) {
  if (p.contains("Regex")) {
    *is_regex = true;
    return p.at("Regex").get<std::string>();
  }
  *is_regex = false;
  return p.value("String", std::string());
}

int parse_scheme(const json& j) {
  std::string s = str_or(j, "prepend_scheme", "");
  if (s.empty()) return bool_or(j, "add_prefix_space", true) ? 2 : 0;
  return s == "never" ? 0 : s == "first" ? 1 : 2;
}

void parse_norm(TokenizerImpl& t, const json& j, const std::string& origin) {
  if (j.is_null()) return;
  std::string type = str_or(j, "type", "");
  if (type == "Sequence") {
    for (const auto& s : j.at("normalizers")) parse_norm(t, s, origin);
  } else if (type == "Prepend") {
    t.norm.push_back({NormKind::Prepend, j.at("prepend").get<std::string>()});
  } else if (type == "Replace") {
    bool rx = false;
    std::string p = pattern_of(j.at("pattern"), &rx);
    NormStep st{NormKind::Replace, p, j.at("content").get<std::string>()};
    if (rx) st.re = std::make_shared<Regex>(p);
    t.norm.push_back(st);
  } else if (type == "Lowercase") {
    t.norm.push_back({NormKind::Lowercase});
  } else if (type == "Strip") {
    NormStep st{NormKind::Strip};
    st.left = bool_or(j, "strip_left", true);
    st.right = bool_or(j, "strip_right", true);
    t.norm.push_back(st);
  } else if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
    NormStep st{NormKind::Unicode};
    st.form = type == "NFC" ? UnicodeForm::NFC : type == "NFD" ? UnicodeForm::NFD : type == "NFKC" ? UnicodeForm::NFKC
                                                                                                   : UnicodeForm::NFKD;
    t.norm.push_back(st);
  } else {
    unsupported(origin, "normalizer", type);
  }
}

void parse_pre(TokenizerImpl& t, const json& j, const std::string& origin) {
  if (j.is_null()) return;
  std::string type = str_or(j, "type", "");
  PreStep st;
  if (type == "Sequence") {
    for (const auto& s : j.at("pretokenizers")) parse_pre(t, s, origin);
    return;
  } else if (type == "Split") {
    bool rx = false;
    std::string p = pattern_of(j.at("pattern"), &rx);
    st.re = std::make_shared<Regex>(rx ? p : escape_regex(p), true);
    st.behavior = parse_behavior(str_or(j, "behavior", "Isolated"), origin);
    st.invert = bool_or(j, "invert", false);
  } else if (type == "ByteLevel") {
    st.kind = PreKind::ByteLevel;
    st.add_prefix_space = bool_or(j, "add_prefix_space", false);
    if (bool_or(j, "use_regex", true)) st.re = std::make_shared<Regex>(kGpt2Pattern);
    t.byte_level = true;
  } else if (type == "Digits") {
    st.re = std::make_shared<Regex>("\\p{N}");
    st.behavior = bool_or(j, "individual_digits", false) ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
  } else if (type == "Punctuation") {
    st.re = std::make_shared<Regex>("[\\p{P}$+<=>^`|~]");
    st.behavior = parse_behavior(str_or(j, "behavior", "Isolated"), origin);
  } else if (type == "Whitespace") {
    st.re = std::make_shared<Regex>("\\w+|[^\\w\\s]+");
    st.behavior = SplitBehavior::Removed;
    st.invert = true;
  } else if (type == "WhitespaceSplit") {
    st.re = std::make_shared<Regex>("\\s+");
    st.behavior = SplitBehavior::Removed;
  } else if (type == "Metaspace") {
    st.kind = PreKind::Metaspace;
    st.replacement = str_or(j, "replacement", "\xE2\x96\x81");
    st.prepend_scheme = parse_scheme(j);
    st.split = bool_or(j, "split", true);
  } else {
    unsupported(origin, "pre_tokenizer", type);
  }
  t.pre.push_back(st);
}

void parse_dec(TokenizerImpl& t, const json& j, const std::string& origin) {
  if (j.is_null()) return;
  std::string type = str_or(j, "type", "");
  DecStep d{DecKind::Fuse};
  if (type == "Sequence") {
    for (const auto& s : j.at("decoders")) parse_dec(t, s, origin);
    return;
  } else if (type == "ByteLevel") {
    d.kind = DecKind::ByteLevel;
  } else if (type == "Replace") {
    bool rx = false;
    d.kind = DecKind::Replace;
    d.a = pattern_of(j.at("pattern"), &rx);
    d.b = j.at("content").get<std::string>();
  } else if (type == "ByteFallback") {
    d.kind = DecKind::ByteFallback;
  } else if (type == "Fuse") {
    d.kind = DecKind::Fuse;
  } else if (type == "Strip") {
    d.kind = DecKind::Strip;
    d.a = j.at("content").get<std::string>();
    d.start = j.value("start", 0);
    d.stop = j.value("stop", 0);
  } else if (type == "Metaspace") {
    d.kind = DecKind::Metaspace;
    d.a = str_or(j, "replacement", "\xE2\x96\x81");
    d.prepend_scheme = parse_scheme(j);
  } else {
    unsupported(origin, "decoder", type);
  }
  t.dec.push_back(d);
}

void parse_post(TokenizerImpl& t, const json& j, const std::string& origin) {
  if (j.is_null()) return;
  std::string type = str_or(j, "type", "");
  if (type == "Sequence") {
    for (const auto& s : j.at("processors")) parse_post(t, s, origin);
  } else if (type == "TemplateProcessing") {
    bool seen_a = false;
    for (const auto& item : j.at("single")) {
      if (item.contains("Sequence")) {
        seen_a = true;
      } else if (item.contains("SpecialToken")) {
        std::string name = item.at("SpecialToken").at("id").get<std::string>();
        const auto& st = j.at("special_tokens");
        PREFOPT_CHECK(st.contains(name), "{}: post_processor template names {:?} but special_tokens lacks it", origin,
                      name);
        for (const auto& id : st.at(name).at("ids")) (seen_a ? t.post_suffix : t.post_prefix).push_back(id.get<int32_t>());
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    t.post_prefix.push_back(j.at("cls").at(1).get<int32_t>());
    t.post_suffix.push_back(j.at("sep").at(1).get<int32_t>());
  } else if (type == "ByteLevel") {
  } else {
    unsupported(origin, "post_processor", type);
  }
}

}  // namespace

void parse_pipeline(TokenizerImpl& t, const json& root, const std::string& origin) {
  t.norm.clear();
  t.pre.clear();
  t.dec.clear();
  t.post_prefix.clear();
  t.post_suffix.clear();
  t.byte_level = false;
  t.j_normalizer = root.value("normalizer", json());
  t.j_pre_tokenizer = root.value("pre_tokenizer", json());
  t.j_post_processor = root.value("post_processor", json());
  t.j_decoder = root.value("decoder", json());
  parse_norm(t, t.j_normalizer, origin);
  parse_pre(t, t.j_pre_tokenizer, origin);
  parse_dec(t, t.j_decoder, origin);
  parse_post(t, t.j_post_processor, origin);
}

void parse_added_tokens(TokenizerImpl& t, const json& arr, const std::string& origin) {
  for (const auto& a : arr) {
    AddedToken at;
    const json& id = a.at("id");
    PREFOPT_REQUIRE(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t(1) << 24), origin,
                    fmt::format("added token {}: \"id\" must be a token id in [0, 2^24), found {}",
                                a.value("content", std::string("?")), id.dump()),
                    "added tokens carry non-negative integer ids");
    at.id = id.get<int32_t>();
    at.content = a.at("content").get<std::string>();
    at.special = bool_or(a, "special", true);
    at.lstrip = bool_or(a, "lstrip", false);
    at.rstrip = bool_or(a, "rstrip", false);
    at.normalized = bool_or(a, "normalized", !at.special);
    at.single_word = bool_or(a, "single_word", false);
    bool dup = false;
    for (auto& e : t.added)
      if (e.id == at.id) {
        e = at;
        dup = true;
      }
    if (!dup) t.added.push_back(at);
  }
}

// Pair table from token ranks (tiktoken / SentencePiece scores): every split of a token
// into two vocabulary tokens is a merge ranked by the token's rank; equal ranks resolve
// leftmost first, as tiktoken's byte_pair_merge and sentencepiece's BPE do.
void build_merges_from_ranks(BpeModel& m, const std::vector<uint32_t>& rank_of_token) {
  m.merges.clear();
  std::vector<std::pair<uint32_t, std::pair<int32_t, int32_t>>> all;
  for (size_t id = 0; id < m.id_to_token.size(); ++id) {
    if (rank_of_token[id] == UINT32_MAX) continue;
    const std::string& s = m.id_to_token[id];
    for (size_t k = utf8_len(static_cast<unsigned char>(s[0])); k < s.size();
         k += utf8_len(static_cast<unsigned char>(s[k]))) {
      auto a = m.vocab.find(s.substr(0, k));
      if (a == m.vocab.end()) continue;
      auto b = m.vocab.find(s.substr(k));
      if (b == m.vocab.end()) continue;
      uint64_t key = (uint64_t(uint32_t(a->second)) << 32) | uint32_t(b->second);
      auto it = m.merges.find(key);
      if (it == m.merges.end() || it->second.first > rank_of_token[id]) {
        m.merges[key] = {rank_of_token[id], int32_t(id)};
        all.push_back({rank_of_token[id], {a->second, b->second}});
      }
    }
  }
  std::stable_sort(all.begin(), all.end(), [](auto& x, auto& y) { return x.first < y.first; });
  m.merge_list.clear();
  for (auto& [r, p] : all) {
    uint64_t key = (uint64_t(uint32_t(p.first)) << 32) | uint32_t(p.second);
    if (m.merges[key].first == r) m.merge_list.push_back(p);
  }
}

namespace {
std::shared_ptr<TokenizerImpl> parse_tokenizer_root(const json& root, const std::string& origin);
}  // namespace

std::shared_ptr<TokenizerImpl> load_tokenizer_json(const std::string& text, const std::string& origin) {
  json root;
  try {
    root = json::parse(text);
  } catch (const std::exception& e) {
    fail(origin, fmt::format("not valid JSON: {}", e.what()), "pass an HF tokenizer.json file");
  }
  PREFOPT_REQUIRE(root.is_object(), origin, fmt::format("expected a JSON object, found {}", root.type_name()),
                  "pass an HF tokenizer.json file (an object with \"model\", \"added_tokens\", ...)");
  try {
    return parse_tokenizer_root(root, origin);
  } catch (const json::exception& e) {
    // A field of the wrong JSON type deep inside (a number where a string belongs, ...).
    fail(origin, fmt::format("unexpected structure: {}", e.what()),
         "the file is not a tokenizer.json as HF `tokenizers` writes it (garbled or hand-edited?); re-save it");
  }
}

namespace {
std::shared_ptr<TokenizerImpl> parse_tokenizer_root(const json& root, const std::string& origin) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = origin;
  PREFOPT_REQUIRE(root.contains("model") && root["model"].is_object(), origin, "no \"model\" object",
                  "an HF tokenizer.json has a top-level model {\"type\": \"BPE\", ...}");
  const json& jm = root["model"];
  std::string mtype = str_or(jm, "type", "BPE");
  if (mtype != "BPE") unsupported(origin, "model", mtype);
  BpeModel& m = t->model;
  PREFOPT_REQUIRE(jm.contains("vocab") && jm["vocab"].is_object(), origin,
                  "\"model.vocab\" must be an object of token -> id", "a BPE model maps every token string to its id");
  PREFOPT_REQUIRE(!jm.contains("merges") || jm["merges"].is_array(), origin, "\"model.merges\" must be an array",
                  "merges are [\"left right\", ...] or [[\"left\", \"right\"], ...]");
  constexpr int32_t kMaxId = 1 << 24;
  int32_t maxid = -1;
  for (auto it = jm["vocab"].begin(); it != jm["vocab"].end(); ++it) {
    const json& v = it.value();
    PREFOPT_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxId, origin,
                    fmt::format("model.vocab[{:?}]: expected a token id in [0, {}), found {}", it.key(), kMaxId, v.dump()),
                    "token ids are non-negative integers");
    maxid = std::max(maxid, v.get<int32_t>());
  }
  m.id_to_token.assign(maxid + 1, "");
  for (auto it = jm["vocab"].begin(); it != jm["vocab"].end(); ++it) {
    int32_t id = it.value().get<int32_t>();
    m.id_to_token[id] = it.key();
    m.vocab[it.key()] = id;
  }
  uint32_t rank = 0;
  for (const auto& mg : jm.value("merges", json::array())) {
    std::string a, b;
    if (mg.is_array()) {
      a = mg.at(0).get<std::string>();
      b = mg.at(1).get<std::string>();
    } else {
      std::string s = mg.get<std::string>();
      size_t sp = s.find(' ');
      PREFOPT_REQUIRE(sp != std::string::npos, origin, fmt::format("merge {:?} has no space", s), "merges are \"left right\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    }
    auto ia = m.vocab.find(a), ib = m.vocab.find(b), ic = m.vocab.find(a + b);
    PREFOPT_REQUIRE(ia != m.vocab.end() && ib != m.vocab.end() && ic != m.vocab.end(), origin,
                    fmt::format("merge #{} ({:?} {:?}) uses a token that is not in the vocab", rank, a, b),
                    "the merges must only combine vocabulary tokens into a vocabulary token");
    uint64_t key = (uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second);
    if (!m.merges.count(key)) {
      m.merges[key] = {rank, ic->second};
      m.merge_list.push_back({ia->second, ib->second});
    }
    ++rank;
  }
  m.byte_fallback = bool_or(jm, "byte_fallback", false);
  m.fuse_unk = bool_or(jm, "fuse_unk", false);
  m.ignore_merges = bool_or(jm, "ignore_merges", false);
  std::string unk = str_or(jm, "unk_token", "");
  if (!unk.empty() && m.vocab.count(unk)) m.unk = m.vocab[unk];
  parse_pipeline(*t, root, origin);
  parse_added_tokens(*t, root.value("added_tokens", json::array()), origin);
  t->finalize();
  // BOS/EOS defaults from the post-processor and well-known names (tokenizer_config overrides).
  if (!t->post_prefix.empty()) t->bos = t->post_prefix.front();
  for (const char* e : {"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"})
    if (!t->eos) t->eos = t->token_id(e);
  return t;
}
}  // namespace

namespace {
std::optional<std::string> token_field(const json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  if (j[key].is_string()) return j[key].get<std::string>();
  if (j[key].is_object() && j[key].contains("content")) return j[key]["content"].get<std::string>();
  return std::nullopt;
}
}  // namespace

namespace {
void apply_config_object(TokenizerImpl& t, const json& j, const std::string& p);
}  // namespace

// tokenizer_config.json / special_tokens_map.json next to the tokenizer: special-token
// names (bos/eos/pad), added_tokens_decoder, chat_template, add_bos_token.
void apply_tokenizer_config(TokenizerImpl& t, const std::string& dir) {
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    std::string p = dir + "/" + name;
    if (!file_exists(p)) continue;
    json j;
    try {
      j = json::parse(read_file(p));
    } catch (const std::exception& e) {
      fail(p, fmt::format("not valid JSON: {}", e.what()), "fix or remove the file");
    }
    PREFOPT_REQUIRE(j.is_object(), p, fmt::format("expected a JSON object, found {}", j.type_name()),
                    std::string(name) + " is an object of tokenizer settings ({\"eos_token\": ..., ...})");
    try {
      apply_config_object(t, j, p);
    } catch (const json::exception& e) {
      fail(p, fmt::format("unexpected structure: {}", e.what()),
           std::string("a key of ") + name + " has the wrong JSON type; fix or remove the file");
    }
  }
}

namespace {
void apply_config_object(TokenizerImpl& t, const json& j, const std::string& p) {
  {
    t.files.push_back(p);
    if (j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object()) {
      json arr = json::array();
      for (auto it = j["added_tokens_decoder"].begin(); it != j["added_tokens_decoder"].end(); ++it) {
        json a = it.value();
        const std::string& key = it.key();
        PREFOPT_REQUIRE(!key.empty() && key.size() <= 8 && key.find_first_not_of("0123456789") == std::string::npos, p,
                        fmt::format("added_tokens_decoder key {:?} is not a token id", key),
                        "added_tokens_decoder maps decimal token ids (\"151643\") to token objects");
        PREFOPT_REQUIRE(a.is_object(), p, fmt::format("added_tokens_decoder[{:?}] is not an object", key),
                        "each entry is {\"content\": \"<|endoftext|>\", \"special\": true, ...}");
        a["id"] = std::stoi(key);
        arr.push_back(a);
      }
      parse_added_tokens(t, arr, p);
    }
    if (j.contains("chat_template")) {
      if (j["chat_template"].is_string()) {
        t.chat_template = j["chat_template"].get<std::string>();
      } else if (j["chat_template"].is_array()) {
        for (const auto& e : j["chat_template"])
          if (e.value("name", "") == "default") t.chat_template = e.value("template", "");
      }
    }
    t.finalize();
    if (auto s = token_field(j, "bos_token")) t.bos = t.token_id(*s);
    if (auto s = token_field(j, "eos_token")) t.eos = t.token_id(*s);
    // transformers' LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from
    // add_bos_token / add_eos_token (update_post_processor).
    std::string cls = j.value("tokenizer_class", "");
    if (cls.find("Llama") != std::string::npos || cls.find("Gemma") != std::string::npos) {
      if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) {
        t.post_prefix.clear();
        if (j["add_bos_token"].get<bool>() && t.bos) t.post_prefix.push_back(*t.bos);
      }
      if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) {
        t.post_suffix.clear();
        if (j["add_eos_token"].get<bool>() && t.eos) t.post_suffix.push_back(*t.eos);
      }
    }
    if (auto s = token_field(j, "eos_token")) t.eos = t.token_id(*s);
    if (auto s = token_field(j, "pad_token")) t.pad = t.token_id(*s);
    if (j.contains("bos_token") && j["bos_token"].is_null()) t.bos.reset();
  }
}
}  // namespace

json tokenizer_to_json(const TokenizerImpl& t) {
  json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  json added = json::array();
  std::vector<AddedToken> sorted = t.added;
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.id < b.id; });
  for (const auto& a : sorted)
    added.push_back({{"id", a.id},
                     {"content", a.content},
                     {"single_word", a.single_word},
                     {"lstrip", a.lstrip},
                     {"rstrip", a.rstrip},
                     {"normalized", a.normalized},
                     {"special", a.special}});
  root["added_tokens"] = added;
  root["normalizer"] = t.j_normalizer;
  root["pre_tokenizer"] = t.j_pre_tokenizer;
  root["post_processor"] = t.j_post_processor;
  root["decoder"] = t.j_decoder;
  json m;
  m["type"] = "BPE";
  m["dropout"] = nullptr;
  m["unk_token"] = t.model.unk >= 0 ? json(t.model.id_to_token[t.model.unk]) : json(nullptr);
  m["continuing_subword_prefix"] = nullptr;
  m["end_of_word_suffix"] = nullptr;
  m["fuse_unk"] = t.model.fuse_unk;
  m["byte_fallback"] = t.model.byte_fallback;
  m["ignore_merges"] = t.model.ignore_merges;
  json v = json::object();
  for (size_t id = 0; id < t.model.id_to_token.size(); ++id)
    if (!t.model.id_to_token[id].empty() || t.model.vocab.count(""))
      v[t.model.id_to_token[id]] = id;
  m["vocab"] = v;
  json merges = json::array();
  for (auto [a, b] : t.model.merge_list) merges.push_back(json::array({t.model.id_to_token[a], t.model.id_to_token[b]}));
  m["merges"] = merges;
  root["model"] = m;
  return root;
}

void Tokenizer::save(const std::string& path) const { atomic_write(path, tokenizer_to_json(*impl_).dump(1) + "\n"); }

std::vector<std::string> Tokenizer::save_pretrained(const std::string& dir) const {
  make_dirs(dir);
  save(dir + "/tokenizer.json");
  const TokenizerImpl& t = *impl_;
  json cfg;
  cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
  cfg["clean_up_tokenization_spaces"] = false;
  json map = json::object();
  auto put = [&](const char* k, std::optional<int32_t> id) {
    if (id) {
      cfg[k] = t.token_str(*id);
      map[k] = t.token_str(*id);
    }
  };
  put("bos_token", t.bos);
  put("eos_token", t.eos);
  put("pad_token", t.pad);
  if (!t.chat_template.empty()) cfg["chat_template"] = t.chat_template;
  atomic_write(dir + "/tokenizer_config.json", cfg.dump(2) + "\n");
  atomic_write(dir + "/special_tokens_map.json", map.dump(2) + "\n");
  return {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
}

}  // namespace prefopt
