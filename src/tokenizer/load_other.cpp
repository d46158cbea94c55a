// The other on-disk forms: model directories, vocab.json + merges.txt (GPT-2 / Qwen2
// slow-tokenizer files), tiktoken ranks (Llama-3 tokenizer.model), and GGUF vocabularies
// (llama.cpp `tokenizer.ggml.*`). Each is turned into the same pipeline a tokenizer.json
// would describe (the JSON sections are built here, so save() writes an equivalent file).
#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace prefopt {

Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl> impl);

namespace {

json split_step(const std::string& pattern) {
  return {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json byte_level_pre(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}
json byte_level_dec() {
  return {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
}
json spm_normalizer(bool prefix) {
  json seq = json::array();
  if (prefix) seq.push_back({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
  seq.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}});
  return {{"type", "Sequence"}, {"normalizers", seq}};
}
json spm_decoder(bool prefix) {
  json seq = json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                          {{"type", "ByteFallback"}},
                          {{"type", "Fuse"}}});
  if (prefix) seq.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return {{"type", "Sequence"}, {"decoders", seq}};
}
json template_post(const std::vector<std::pair<std::string, int32_t>>& pre,
                   const std::vector<std::pair<std::string, int32_t>>& post) {
  json single = json::array(), st = json::object();
  for (auto& [n, id] : pre) {
    single.push_back({{"SpecialToken", {{"id", n}, {"type_id", 0}}}});
    st[n] = {{"id", n}, {"ids", {id}}, {"tokens", {n}}};
  }
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  for (auto& [n, id] : post) {
    single.push_back({{"SpecialToken", {{"id", n}, {"type_id", 0}}}});
    st[n] = {{"id", n}, {"ids", {id}}, {"tokens", {n}}};
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", st}};
}

void set_vocab(BpeModel& m, std::vector<std::string> tokens) {
  m.id_to_token = std::move(tokens);
  m.vocab.clear();
  m.vocab.reserve(m.id_to_token.size() * 2);
  for (size_t i = 0; i < m.id_to_token.size(); ++i) m.vocab.emplace(m.id_to_token[i], int32_t(i));
}

void add_merges_text(BpeModel& m, const std::vector<std::string>& lines, const std::string& origin) {
  uint32_t rank = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& s = lines[i];
    size_t sp = s.find(' ');
    PREFOPT_REQUIRE(sp != std::string::npos, origin, fmt::format("merge {} {:?} has no space", i + 1, s),
                    "each merge is \"left right\"");
    std::string a = s.substr(0, sp), b = s.substr(sp + 1);
    auto ia = m.vocab.find(a), ib = m.vocab.find(b), ic = m.vocab.find(a + b);
    PREFOPT_REQUIRE(ia != m.vocab.end() && ib != m.vocab.end() && ic != m.vocab.end(), origin,
                    fmt::format("merge {} ({:?} {:?}) uses a token not in the vocabulary", i + 1, a, b),
                    "the merges file does not belong to this vocabulary");
    uint64_t key = (uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second);
    if (!m.merges.count(key)) {
      m.merges[key] = {rank, ic->second};
      m.merge_list.push_back({ia->second, ib->second});
    }
    ++rank;
  }
}

std::shared_ptr<TokenizerImpl> finish(std::shared_ptr<TokenizerImpl> t, const json& pipeline, const std::string& origin) {
  parse_pipeline(*t, pipeline, origin);
  t->finalize();
  return t;
}

}  // namespace

// ----------------------------------------------------------------- vocab.json + merges.txt
std::shared_ptr<TokenizerImpl> load_vocab_merges(const std::string& dir) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = dir;
  std::string vp = dir + "/vocab.json", mp = dir + "/merges.txt";
  json v;
  try {
    v = json::parse(read_file(vp));
  } catch (const nlohmann::json::exception& e) {
    fail(vp, fmt::format("not valid JSON: {}", e.what()), "vocab.json maps token -> id");
  }
  int32_t maxid = -1;
  for (auto it = v.begin(); it != v.end(); ++it) maxid = std::max(maxid, it.value().get<int32_t>());
  std::vector<std::string> toks(maxid + 1);
  for (auto it = v.begin(); it != v.end(); ++it) toks[it.value().get<int32_t>()] = it.key();
  set_vocab(t->model, std::move(toks));
  std::string text = read_file(mp);
  std::vector<std::string> lines;
  size_t p = 0;
  while (p < text.size()) {
    size_t e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    std::string line = text.substr(p, e - p);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && !(lines.empty() && line.rfind("#version", 0) == 0)) lines.push_back(line);
    p = e + 1;
  }
  add_merges_text(t->model, lines, mp);
  // The tokenizer class decides the split pattern (transformers tokenization_qwen2.py uses
  // PRETOKENIZE_REGEX; GPT2Tokenizer the GPT-2 pattern).
  std::string cls;
  bool prefix = false;
  if (file_exists(dir + "/tokenizer_config.json")) {
    json c = json::parse(read_file(dir + "/tokenizer_config.json"), nullptr, false);
    if (c.is_object()) {
      cls = c.value("tokenizer_class", "");
      prefix = c.value("add_prefix_space", false);
    }
  }
  json pipe;
  if (cls.rfind("Qwen2", 0) == 0) {
    pipe["normalizer"] = {{"type", "NFC"}};
    pipe["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {split_step(kQwen2Pattern), byte_level_pre(false)}}};
  } else {
    pipe["pre_tokenizer"] = byte_level_pre(true);
    pipe["pre_tokenizer"]["add_prefix_space"] = prefix;
  }
  pipe["decoder"] = byte_level_dec();
  pipe["post_processor"] = nullptr;
  finish(t, pipe, vp);
  if (file_exists(dir + "/added_tokens.json")) {
    json a;
    try {
      a = json::parse(read_file(dir + "/added_tokens.json"));
    } catch (const nlohmann::json::exception& e) {
      fail(dir + "/added_tokens.json", fmt::format("not valid JSON: {}", e.what()), "added_tokens.json maps token -> id");
    }
    PREFOPT_REQUIRE(a.is_object(), dir + "/added_tokens.json", fmt::format("expected a JSON object, found {}", a.type_name()),
                    "added_tokens.json maps token -> id");
    json arr = json::array();
    for (auto it = a.begin(); it != a.end(); ++it)
      arr.push_back({{"id", it.value()}, {"content", it.key()}, {"special", true}});
    parse_added_tokens(*t, arr, dir + "/added_tokens.json");
    t->files.push_back(dir + "/added_tokens.json");
  }
  t->files.insert(t->files.begin(), {vp, mp});
  t->finalize();
  for (const char* e : {"<|endoftext|>"})
    if (!t->eos) t->eos = t->token_id(e);
  apply_tokenizer_config(*t, dir);
  return t;
}

// ----------------------------------------------------------------- tiktoken (Llama-3)
namespace {
std::string base64_decode(const std::string& s, const std::string& where) {
  static int8_t tab[256];
  static bool init = false;
  if (!init) {
    std::memset(tab, -1, sizeof tab);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) tab[static_cast<unsigned char>(a[i])] = int8_t(i);
    init = true;
  }
  std::string o;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    int v = tab[static_cast<unsigned char>(c)];
    PREFOPT_REQUIRE(v >= 0, where, fmt::format("invalid base64 {:?}", s), "a tiktoken file has \"base64token rank\" per line");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o += char((acc >> bits) & 0xFF);
    }
  }
  return o;
}
}  // namespace

std::shared_ptr<TokenizerImpl> load_tiktoken(const std::string& path) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = path;
  std::string text = read_file(path);
  std::vector<std::string> toks;
  size_t p = 0, line = 0;
  while (p < text.size()) {
    size_t e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    ++line;
    std::string l = text.substr(p, e - p);
    p = e + 1;
    if (l.empty()) continue;
    size_t sp = l.find(' ');
    std::string w = fmt::format("{}:{}", path, line);
    PREFOPT_REQUIRE(sp != std::string::npos, w, fmt::format("expected \"base64token rank\", found {:?}", l.substr(0, 40)),
                    "is this a SentencePiece .model? prefopt reads tiktoken-format tokenizer.model (Llama-3)");
    std::string bytes = base64_decode(l.substr(0, sp), w);
    size_t rank = std::stoul(l.substr(sp + 1));
    if (toks.size() <= rank) toks.resize(rank + 1);
    std::string u;
    for (unsigned char c : bytes) u += byte_to_unicode(c);
    toks[rank] = u;
  }
  size_t n = toks.size();
  set_vocab(t->model, toks);
  std::vector<uint32_t> ranks(n);
  for (size_t i = 0; i < n; ++i) ranks[i] = toks[i].size() > 2 || utf8_len(toks[i][0]) < toks[i].size() ? uint32_t(i) : UINT32_MAX;
  t->byte_level = true;
  build_merges_from_ranks(t->model, ranks);
  t->model.ignore_merges = true;
  // Llama-3.1 special tokens (HF tokenizer_config of Meta-Llama-3.1), ids from 128000.
  std::vector<std::string> sp = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                 "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                                 "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                                 "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
  for (int i = 3; sp.size() < 256; ++i) sp.push_back(fmt::format("<|reserved_special_token_{}|>", i));
  json added = json::array();
  for (size_t i = 0; i < sp.size(); ++i) added.push_back({{"id", int32_t(n + i)}, {"content", sp[i]}, {"special", true}});
  json pipe;
  pipe["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {split_step(kLlama3Pattern), byte_level_pre(false)}}};
  pipe["decoder"] = byte_level_dec();
  pipe["post_processor"] = template_post({{"<|begin_of_text|>", int32_t(n)}}, {});
  parse_added_tokens(*t, added, path);
  finish(t, pipe, path);
  t->bos = int32_t(n);
  t->eos = int32_t(n + 9);  // <|eot_id|> (instruct models end turns with it)
  t->files.push_back(path);
  return t;
}

// ----------------------------------------------------------------- GGUF
namespace {

struct GgufReader {
  std::string data, path;
  size_t p = 0;
  void need(uint64_t n) {
    PREFOPT_REQUIRE(n <= data.size() && p <= data.size() - n, path, fmt::format("truncated at byte {}", p),
                    "the GGUF file is incomplete");
  }
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data.data() + p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string str() {
    uint64_t n = get<uint64_t>();
    need(n);
    std::string s = data.substr(p, n);
    p += n;
    return s;
  }
  json value(uint32_t type, int depth = 0) {
    switch (type) {
      case 0: return get<uint8_t>();
      case 1: return get<int8_t>();
      case 2: return get<uint16_t>();
      case 3: return get<int16_t>();
      case 4: return get<uint32_t>();
      case 5: return get<int32_t>();
      case 6: return get<float>();
      case 7: return get<uint8_t>() != 0;
      case 8: return json(str());
      case 9: {
        PREFOPT_REQUIRE(depth < 4, path, fmt::format("arrays nested too deep at byte {}", p), "the GGUF file is damaged");
        uint32_t et = get<uint32_t>();
        uint64_t n = get<uint64_t>();
        PREFOPT_REQUIRE(n <= data.size() - p, path, fmt::format("array of {} elements at byte {}", n, p),
                        "the GGUF file is damaged");
        json a = json::array();
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(et, depth + 1));
        return a;
      }
      case 10: return get<uint64_t>();
      case 11: return get<int64_t>();
      case 12: return get<double>();
    }
    fail(path, fmt::format("unknown GGUF value type {} at byte {}", type, p), "is this a GGUF v2/v3 file?");
  }
};

// llama.cpp llama-vocab.cpp pre-tokenizer regex lists by `tokenizer.ggml.pre`.
std::vector<std::string> gguf_pre_patterns(const std::string& pre, const std::string& path) {
  static const std::string gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo" || pre == "jais")
    return {gpt2};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "dbrx" || pre == "smaug-bpe")
    return {kLlama3Pattern};
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return {kQwen2Pattern};
  if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell" ||
      pre == "exaone" || pre == "minerva-7b")
    return {"\\p{N}", gpt2};
  if (pre == "falcon") return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2, "[0-9][0-9][0-9]"};
  if (pre == "deepseek-coder")
    return {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"};
  if (pre == "deepseek-llm")
    return {"[\r\n]",
            "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-"
            "ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ"
            "𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
            "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"};
  fail(path, fmt::format("unknown tokenizer.ggml.pre {:?}", pre),
       "known: default gpt-2 llama-bpe qwen2 starcoder falcon deepseek-coder deepseek-llm (and aliases); "
       "or use the model's tokenizer.json");
}

}  // namespace

// SentencePiece BPE from scores (GGUF "llama" and SentencePiece .model): merges ranked by
// the merged piece's score (sentencepiece bpe_model.cc merges the best-scored pair first,
// leftmost on ties), byte fallback, the Llama normalizer/decoder.
static void spm_model(TokenizerImpl& t, const std::vector<float>& scores, const std::vector<int>& types, bool prefix,
                      json& pipe) {
  size_t n = t.model.id_to_token.size();
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i)
    if (types[i] == 1) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<uint32_t> ranks(n, UINT32_MAX);
  for (size_t k = 0; k < order.size(); ++k) ranks[order[k]] = uint32_t(k);
  build_merges_from_ranks(t.model, ranks);
  t.model.byte_fallback = true;
  t.model.fuse_unk = true;
  pipe["normalizer"] = spm_normalizer(prefix);
  pipe["decoder"] = spm_decoder(prefix);
}

// ----------------------------------------------------------------- SentencePiece .model
// ModelProto (sentencepiece_model.proto): 1 pieces {1 piece, 2 score, 3 type},
// 2 trainer_spec {3 model_type (2 = BPE), 35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id,
// 43 pad_id}, 3 normalizer_spec {3 add_dummy_prefix}.
namespace {
struct Proto {
  const std::string& d;
  size_t p, end;
  std::string path;
  uint64_t varint() {
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
      PREFOPT_REQUIRE(p < end, path, fmt::format("truncated protobuf at byte {}", p), "the SentencePiece model is damaged");
      uint8_t b = uint8_t(d[p++]);
      v |= uint64_t(b & 0x7F) << sh;
      if (!(b & 0x80)) return v;
    }
    fail(path, "bad protobuf varint", "the SentencePiece model is damaged");
  }
  // Calls fn(field, wire, value, sub) for each field; sub is [b, e) for length-delimited.
  template <typename F>
  void each(F fn) {
    while (p < end) {
      uint64_t key = varint();
      int field = int(key >> 3), wire = int(key & 7);
      uint64_t v = 0;
      size_t b = 0, e = 0;
      if (wire == 0) v = varint();
      else if (wire == 1) { PREFOPT_CHECK(p + 8 <= end, "{}: truncated", path); std::memcpy(&v, d.data() + p, 8); p += 8; }
      else if (wire == 5) { PREFOPT_CHECK(p + 4 <= end, "{}: truncated", path); uint32_t x; std::memcpy(&x, d.data() + p, 4); v = x; p += 4; }
      else if (wire == 2) { uint64_t n = varint(); PREFOPT_CHECK(p + n <= end, "{}: truncated", path); b = p; e = p + n; p = e; }
      else fail(path, fmt::format("unsupported protobuf wire type {}", wire), "is this a SentencePiece .model?");
      fn(field, wire, v, b, e);
    }
  }
};
}  // namespace

std::shared_ptr<TokenizerImpl> load_sentencepiece(const std::string& path, const std::string& data) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = path;
  t->files.push_back(path);
  std::vector<std::string> toks;
  std::vector<float> scores;
  std::vector<int> types;
  int model_type = 1, unk = 0, bos = 1, eos = 2, pad = -1;
  bool prefix = true;
  Proto top{data, 0, data.size(), path};
  top.each([&](int f, int w, uint64_t v, size_t b, size_t e) {
    if (f == 1 && w == 2) {
      std::string piece;
      float score = 0;
      int type = 1;
      Proto sp{data, b, e, path};
      sp.each([&](int f2, int w2, uint64_t v2, size_t b2, size_t e2) {
        if (f2 == 1 && w2 == 2) piece = data.substr(b2, e2 - b2);
        else if (f2 == 2 && w2 == 5) { uint32_t x = uint32_t(v2); std::memcpy(&score, &x, 4); }
        else if (f2 == 3 && w2 == 0) type = int(v2);
      });
      toks.push_back(piece);
      scores.push_back(score);
      types.push_back(type);
    } else if (f == 2 && w == 2) {
      Proto ts{data, b, e, path};
      ts.each([&](int f2, int w2, uint64_t v2, size_t, size_t) {
        if (w2 != 0) return;
        if (f2 == 3) model_type = int(v2);
        else if (f2 == 40) unk = int(int32_t(v2));
        else if (f2 == 41) bos = int(int32_t(v2));
        else if (f2 == 42) eos = int(int32_t(v2));
        else if (f2 == 43) pad = int(int32_t(v2));
      });
    } else if (f == 3 && w == 2) {
      Proto ns{data, b, e, path};
      ns.each([&](int f2, int w2, uint64_t v2, size_t, size_t) {
        if (f2 == 3 && w2 == 0) prefix = v2 != 0;
      });
    }
  });
  PREFOPT_REQUIRE(!toks.empty(), path, "no pieces", "not a SentencePiece model");
  PREFOPT_REQUIRE(model_type == 2, path, fmt::format("SentencePiece model_type {} is not BPE", model_type),
                  "prefopt reads BPE models (Llama/Mistral/TinyLlama); Unigram models need their tokenizer.json");
  size_t n = toks.size();
  set_vocab(t->model, toks);
  json added = json::array();
  for (size_t i = 0; i < n; ++i)
    if (types[i] == 2 || types[i] == 3 || types[i] == 4)
      added.push_back({{"id", int32_t(i)}, {"content", toks[i]}, {"special", types[i] != 4}, {"normalized", types[i] == 4}});
  auto valid = [&](int id) { return id >= 0 && size_t(id) < n ? std::optional<int32_t>(id) : std::nullopt; };
  t->bos = valid(bos);
  t->eos = valid(eos);
  t->pad = valid(pad);
  if (valid(unk)) t->model.unk = unk;
  json pipe;
  spm_model(*t, scores, types, prefix, pipe);
  std::vector<std::pair<std::string, int32_t>> pre_t;
  if (t->bos) pre_t.push_back({toks[*t->bos], *t->bos});
  pipe["post_processor"] = template_post(pre_t, {});
  parse_added_tokens(*t, added, path);
  finish(t, pipe, path);
  return t;
}

static std::shared_ptr<TokenizerImpl> gguf_tokenizer(const json& kv, const std::string& path);

std::shared_ptr<TokenizerImpl> load_gguf(const std::string& path) {
  GgufReader r{read_file(path), path};
  PREFOPT_REQUIRE(r.data.size() >= 24 && r.data.compare(0, 4, "GGUF") == 0, path,
                  fmt::format("not a GGUF file (magic {:?})", r.data.substr(0, 4)),
                  "pass a .gguf, tokenizer.json or model directory");
  r.p = 4;
  uint32_t version = r.get<uint32_t>();
  PREFOPT_REQUIRE(version >= 2, path, fmt::format("GGUF version {} is not supported", version),
                  "re-convert with a recent llama.cpp");
  r.get<uint64_t>();  // tensors
  uint64_t nkv = r.get<uint64_t>();
  json kv;
  for (uint64_t i = 0; i < nkv; ++i) {
    std::string key = r.str();
    uint32_t type = r.get<uint32_t>();
    json v = r.value(type);
    if (key.rfind("tokenizer.", 0) == 0) kv[key] = std::move(v);
  }
  PREFOPT_REQUIRE(kv.contains("tokenizer.ggml.model") && kv.contains("tokenizer.ggml.tokens"), path,
                  "no tokenizer.ggml.model / tokens keys", "the GGUF holds no vocabulary");
  try {
    return gguf_tokenizer(kv, path);
  } catch (const json::exception& e) {
    // A key of the wrong GGUF type (a number where a string array belongs, ...).
    fail(path, fmt::format("unexpected tokenizer.ggml.* value: {}", e.what()),
         "the GGUF file is damaged or not written by llama.cpp; re-convert it");
  }
}

static std::shared_ptr<TokenizerImpl> gguf_tokenizer(const json& kv, const std::string& path) {
  std::string model = kv.at("tokenizer.ggml.model").get<std::string>();
  auto t = std::make_shared<TokenizerImpl>();
  t->source = path;  // no extra_files: the .gguf may hold the weights (see tokenizer.h)
  std::vector<std::string> toks = kv.at("tokenizer.ggml.tokens").get<std::vector<std::string>>();
  size_t n = toks.size();
  PREFOPT_REQUIRE(n > 0 && n < (size_t(1) << 24), path, fmt::format("tokenizer.ggml.tokens has {} tokens", n),
                  "the GGUF file is damaged");
  std::vector<int> types(n, 1);
  if (kv.contains("tokenizer.ggml.token_type")) types = kv.at("tokenizer.ggml.token_type").get<std::vector<int>>();
  PREFOPT_REQUIRE(types.size() == n, path,
                  fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens", types.size(), n),
                  "the GGUF file is damaged");
  set_vocab(t->model, toks);
  json added = json::array();
  for (size_t i = 0; i < n; ++i)
    if (types[i] == 2 || types[i] == 3 || types[i] == 4)
      added.push_back({{"id", int32_t(i)}, {"content", toks[i]}, {"special", types[i] != 4}, {"normalized", types[i] == 4}});
  auto id_key = [&](const char* k) -> std::optional<int32_t> {
    if (!kv.contains(k)) return std::nullopt;
    const int64_t id = kv.at(k).get<int64_t>();
    PREFOPT_REQUIRE(id >= 0 && id < int64_t(n), path, fmt::format("{} = {} is not a token id (vocabulary of {})", k, id, n),
                    "the GGUF file is damaged");
    return int32_t(id);
  };
  t->bos = id_key("tokenizer.ggml.bos_token_id");
  t->eos = id_key("tokenizer.ggml.eos_token_id");
  t->pad = id_key("tokenizer.ggml.padding_token_id");
  if (auto u = id_key("tokenizer.ggml.unknown_token_id")) t->model.unk = *u;
  bool add_bos = kv.value("tokenizer.ggml.add_bos_token", model == "llama");
  bool add_eos = kv.value("tokenizer.ggml.add_eos_token", false);
  std::vector<std::pair<std::string, int32_t>> pre_t, post_t;
  if (add_bos && t->bos) pre_t.push_back({toks[*t->bos], *t->bos});
  if (add_eos && t->eos) post_t.push_back({toks[*t->eos], *t->eos});
  json pipe;
  pipe["post_processor"] = template_post(pre_t, post_t);
  if (model == "gpt2") {
    PREFOPT_REQUIRE(kv.contains("tokenizer.ggml.merges"), path, "BPE vocabulary without tokenizer.ggml.merges",
                    "re-convert the model with llama.cpp's convert_hf_to_gguf.py");
    add_merges_text(t->model, kv.at("tokenizer.ggml.merges").get<std::vector<std::string>>(), path);
    std::string pre = kv.value("tokenizer.ggml.pre", "default");
    json steps = json::array();
    for (const auto& p : gguf_pre_patterns(pre, path)) steps.push_back(split_step(p));
    steps.push_back(byte_level_pre(false));
    pipe["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    pipe["decoder"] = byte_level_dec();
  } else if (model == "llama") {
    bool prefix = kv.value("tokenizer.ggml.add_space_prefix", true);
    std::vector<float> scores(n, 0.f);
    if (kv.contains("tokenizer.ggml.scores")) scores = kv.at("tokenizer.ggml.scores").get<std::vector<float>>();
    PREFOPT_REQUIRE(scores.size() == n, path,
                    fmt::format("tokenizer.ggml.scores has {} entries for {} tokens", scores.size(), n),
                    "the GGUF file is damaged");
    spm_model(*t, scores, types, prefix, pipe);
  } else {
    fail(path, fmt::format("tokenizer.ggml.model {:?} is not supported", model),
         "prefopt reads BPE vocabularies: \"gpt2\" (byte-level) and \"llama\" (SentencePiece BPE)");
  }
  parse_added_tokens(*t, added, path);
  finish(t, pipe, path);
  return t;
}

// ----------------------------------------------------------------- dispatch
// tokenizer.model is either tiktoken text (Llama-3) or a SentencePiece protobuf (Llama-2):
// a protobuf ModelProto starts with field 1, wire type 2 (byte 0x0A).
static std::shared_ptr<TokenizerImpl> load_model_file(const std::string& path) {
  std::string head = read_file(path);
  if (!head.empty() && head[0] == '\x0A') return load_sentencepiece(path, head);
  return load_tiktoken(path);
}

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& origin) {
  return make_tokenizer(load_tokenizer_json(text, origin));
}

Tokenizer Tokenizer::load(const std::string& path) {
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return path.size() >= n && path.compare(path.size() - n, n, s) == 0;
  };
  std::shared_ptr<TokenizerImpl> t;
  if (is_directory(path)) {
    if (file_exists(path + "/tokenizer.json")) {
      t = load_tokenizer_json(read_file(path + "/tokenizer.json"), path + "/tokenizer.json");
      t->source = path;
      t->files.push_back(path + "/tokenizer.json");
      apply_tokenizer_config(*t, path);
    } else if (file_exists(path + "/vocab.json") && file_exists(path + "/merges.txt")) {
      t = load_vocab_merges(path);
    } else if (file_exists(path + "/tokenizer.model")) {
      t = load_model_file(path + "/tokenizer.model");
      apply_tokenizer_config(*t, path);
    } else {
      fail(path, "no tokenizer files in this directory",
           "expected tokenizer.json, or vocab.json + merges.txt, or tokenizer.model (tiktoken), or pass a .gguf");
    }
  } else if (ends(".gguf")) {
    t = load_gguf(path);
  } else if (ends(".model")) {
    t = load_model_file(path);
  } else {
    PREFOPT_REQUIRE(file_exists(path), path, "no such file", "pass a tokenizer.json, a model directory or a .gguf file");
    t = load_tokenizer_json(read_file(path), path);
    t->files.push_back(path);
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    apply_tokenizer_config(*t, dir);
  }
  return make_tokenizer(t);
}

}  // namespace prefopt
