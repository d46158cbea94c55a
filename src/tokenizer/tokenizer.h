// prefopt tokenizer: Hugging Face tokenizers, token for token.
//
// Loads the on-disk forms users bring and encodes exactly as HF `tokenizers`:
//   - tokenizer.json (HF `tokenizers` format): BPE models, byte-level (GPT-2, Llama-3,
//     Qwen2, DeepSeek, StarCoder, Falcon) and SentencePiece-style (Llama-2, TinyLlama,
//     Mistral, Phi-3: "▁" normalization, merges by rank, byte fallback <0xNN>);
//   - a model directory: tokenizer.json, or vocab.json + merges.txt (+ tokenizer_config.json /
//     added_tokens.json / special_tokens_map.json), or tokenizer.model (tiktoken ranks, Llama-3);
//   - a .gguf file (llama.cpp `tokenizer.ggml.*` keys).
// Added/special tokens are matched before normalization and pre-tokenization (HF
// AddedVocabulary semantics: special, lstrip, rstrip, single_word, normalized).
// Thread safety: a loaded Tokenizer is immutable; encode/decode may run concurrently.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prefopt {

struct TokenizerImpl;  // tokenizer_impl.h (private)

class Tokenizer {
 public:
  // PATH: tokenizer.json | model directory | tokenizer.model (tiktoken) | file.gguf.
  static Tokenizer load(const std::string& path);
  // From the text of a tokenizer.json (no side files). `origin` names it in errors.
  static Tokenizer from_json_text(const std::string& json_text, const std::string& origin = "tokenizer.json");

  Tokenizer();
  ~Tokenizer();
  Tokenizer(const Tokenizer&);
  Tokenizer& operator=(const Tokenizer&);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // No BOS/EOS unless add_special_tokens (then the post-processor's template, as HF).
  // Invalid UTF-8 is first replaced by U+FFFD per bad sequence (never crashes).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Same, plus per token the byte range [first, second) of `text` it came from
  // (added BOS/EOS get an empty range at 0 / text.size()). For invalid UTF-8 input the
  // ranges refer to the U+FFFD-replaced text.
  std::vector<int32_t> encode_with_offsets(std::string_view text, bool add_special_tokens,
                                           std::vector<std::pair<size_t, size_t>>* offsets) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // largest id + 1 (model vocab plus added tokens)
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  std::optional<int32_t> unk_id() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" for an unknown id
  bool is_special(int32_t id) const;          // an added token marked special
  bool is_added(int32_t id) const;            // any added token (matched before pre-tokenization)

  // The chat_template of tokenizer_config.json when the source had one, else "".
  const std::string& chat_template_text() const;
  // Where it was loaded from (file or directory).
  const std::string& source() const;

  // Writes an HF tokenizer.json (atomic) that HF `tokenizers` accepts and that reloads
  // here identically.
  void save(const std::string& tokenizer_json_path) const;
  // Writes tokenizer.json plus tokenizer_config.json and special_tokens_map.json into
  // `dir` (each atomic) so a saved model directory is loadable by HF AutoTokenizer.
  // Returns the file names written.
  std::vector<std::string> save_pretrained(const std::string& dir) const;
  // The tokenizer files of the source (absolute paths) that a trainer may copy next to
  // a saved model: tokenizer.json, tokenizer_config.json, special_tokens_map.json,
  // vocab.json, merges.txt, added_tokens.json, tokenizer.model — those that exist. Empty
  // for a GGUF source (the .gguf may hold the weights): call save_pretrained() instead.
  std::vector<std::string> extra_files() const;

  const TokenizerImpl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl);
  std::shared_ptr<const TokenizerImpl> impl_;
  friend Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl>);
};

// Byte-level BPE trained on `corpus` (GPT-2 pre-tokenizer), deterministic: the most
// frequent pair wins, ties broken by the smaller (left id, right id) pair. The vocabulary
// is 256 byte tokens + merges + `special_tokens` (appended, special=true), total
// `vocab_size`. The result saves to a valid tokenizer.json via save().
// split_digits = true pre-tokenizes with Qwen2's pattern instead (every digit
// its own pre-token, as Qwen2 and Llama-2 do), so numbers are spelled digit by
// digit: what a small model needs to learn arithmetic.
// The files a Hugging Face model directory keeps its tokenizer in (and
// generation_config.json): the one list every writer of a model directory copies.
const std::vector<std::string>& tokenizer_file_names();

// Copies those of tokenizer_file_names() that exist in directory `from` into
// `to` (atomically); a file that is the same path, or that `to` already has
// when keep_existing, is left alone. `from` = "" copies nothing.
void copy_tokenizer_files(const std::string& from, const std::string& to, bool keep_existing = false);

Tokenizer train_bpe(const std::vector<std::string>& corpus, int vocab_size,
                    const std::vector<std::string>& special_tokens, bool split_digits = false);

// Prompt + completion encoded jointly (as TRL does for a pair). `boundary` = the number of
// prompt tokens. If encode(prompt) is not a prefix of the joint ids, prefix_ok = false and
// boundary = the longest common prefix; callers warn with the row number and count them.
struct PromptCompletion {
  std::vector<int32_t> ids;
  size_t boundary = 0;
  bool prefix_ok = true;
};
PromptCompletion encode_prompt_completion(const Tokenizer& tok, std::string_view prompt,
                                          std::string_view completion, bool add_special_tokens);

}  // namespace prefopt
