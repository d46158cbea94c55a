// Private: the data of a loaded tokenizer (HF `tokenizers` pipeline, typed).
// Shape of the pipeline (HF order): added-token split -> normalizer -> pre-tokenizer
// -> model (BPE) -> post-processor; decode: ids -> token strings -> decoder chain.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace prefopt {

using json = nlohmann::json;

// ---- unicode.cpp ----
std::string sanitize_utf8(std::string_view s);             // invalid sequences -> U+FFFD
bool valid_utf8(std::string_view s);
size_t utf8_len(unsigned char lead);                          // 1..4 (1 for bad leads)
const std::string& byte_to_unicode(uint8_t b);                // GPT-2 bytes_to_unicode
int unicode_to_byte(uint32_t cp);                             // -1 if not in the map
uint32_t decode_cp(std::string_view s, size_t& i);            // advances i (valid UTF-8)
std::string encode_cp(uint32_t cp);
enum class UnicodeForm : uint8_t { NFC, NFD, NFKC, NFKD };
std::string unicode_normalize(std::string_view s, UnicodeForm f);  // utf8proc
// The normal form, and per output byte the offset in s of the character it came from.
std::string unicode_normalize_aligned(std::string_view s, UnicodeForm f, std::vector<uint32_t>& align);
// Full Unicode lowercase (HF's Lowercase normalizer), aligned the same way.
std::string unicode_lowercase_aligned(std::string_view s, std::vector<uint32_t>& align);

// ---- regex.cpp (PCRE2, UTF + UCP, JIT) ----
class Regex {
 public:
  explicit Regex(const std::string& pattern, bool multiline = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Appends [begin, end) of every non-overlapping match in s[b, e).
  void find_all(std::string_view s, size_t b, size_t e, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;
};

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true, lstrip = false, rstrip = false, normalized = false, single_word = false;
};

enum class SplitBehavior : uint8_t { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

enum class NormKind : uint8_t { Prepend, Replace, Identity, Lowercase, Strip, Unicode };
struct NormStep {
  NormKind kind = NormKind::Identity;
  std::string a, b;                // Prepend: a; Replace: a -> b (string pattern)
  std::shared_ptr<Regex> re;       // Replace with a regex pattern
  bool left = false, right = false;
  UnicodeForm form = UnicodeForm::NFC;  // Unicode
};

enum class PreKind : uint8_t { Split, ByteLevel, Metaspace };
struct PreStep {
  PreKind kind = PreKind::Split;
  std::shared_ptr<Regex> re;       // Split (also ByteLevel use_regex, Digits, Punctuation)
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;   // ByteLevel
  std::string replacement = "\xE2\x96\x81";  // Metaspace
  int prepend_scheme = 1;          // 0 never, 1 first, 2 always
  bool split = true;               // Metaspace
};

enum class DecKind : uint8_t { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
struct DecStep {
  DecKind kind;
  std::string a, b;
  int start = 0, stop = 0;
  int prepend_scheme = 1;
};

struct BpeModel {
  std::vector<std::string> id_to_token;               // model vocab (holes are "")
  std::unordered_map<std::string, int32_t> vocab;
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<uint32_t, int32_t>> merges;
  std::vector<std::pair<int32_t, int32_t>> merge_list;  // in rank order, for save()
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  int32_t unk = -1;
  int32_t byte_ids[256];                                // <0xNN> tokens (byte_fallback) or -1
  int32_t bl_ids[256];                                  // byte-level alphabet char ids or -1
};

struct TokenizerImpl {
  std::string source;
  std::string chat_template;
  std::vector<std::string> files;
  BpeModel model;
  bool byte_level = false;  // a ByteLevel pre-tokenizer maps bytes to the GPT-2 alphabet
  std::vector<NormStep> norm;
  std::vector<PreStep> pre;
  std::vector<DecStep> dec;
  std::vector<int32_t> post_prefix, post_suffix;  // single-sequence template
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  std::vector<std::vector<size_t>> added_by_first_byte;  // 256 lists, longest first
  std::vector<uint32_t> token_nbytes;                   // decoded byte length per id
  std::optional<int32_t> bos, eos, pad;
  int32_t vocab_size = 0;
  // JSON sections kept for save() (HF tokenizers format).
  json j_normalizer, j_pre_tokenizer, j_post_processor, j_decoder, j_model_extra;

  // Distinct per object: keys the per-thread BPE word cache (tokenizer.cpp).
  const uint64_t serial = next_serial();
  static uint64_t next_serial();

  void finalize();  // builds lookup tables after loading
  std::optional<int32_t> token_id(std::string_view t) const;
  std::string token_str(int32_t id) const;
  // BPE of one pre-token (already in the model's alphabet); appends ids and byte lengths.
  void bpe(std::string_view piece, std::vector<int32_t>& ids) const;
  // Same, through a per-thread cache of recent pieces (HF's BPE cache does the same).
  void bpe_cached(std::string_view piece, std::vector<int32_t>& ids) const;
};

// ---- pipeline parsing from tokenizer.json sections (load_json.cpp) ----
void parse_pipeline(TokenizerImpl& t, const json& root, const std::string& origin);
void parse_added_tokens(TokenizerImpl& t, const json& arr, const std::string& origin);
void build_merges_from_ranks(BpeModel& m, const std::vector<uint32_t>& rank_of_token);
std::shared_ptr<TokenizerImpl> load_tokenizer_json(const std::string& text, const std::string& origin);
void apply_tokenizer_config(TokenizerImpl& t, const std::string& dir);
json tokenizer_to_json(const TokenizerImpl& t);

// ---- load_other.cpp ----
std::shared_ptr<TokenizerImpl> load_vocab_merges(const std::string& dir);
std::shared_ptr<TokenizerImpl> load_tiktoken(const std::string& path);
std::shared_ptr<TokenizerImpl> load_gguf(const std::string& path);

// Well-known split patterns.
extern const char* const kGpt2Pattern;
extern const char* const kLlama3Pattern;
extern const char* const kQwen2Pattern;

}  // namespace prefopt
