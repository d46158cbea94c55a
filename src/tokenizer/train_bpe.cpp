// Byte-level BPE training (Sennrich et al. 2016, "Neural Machine Translation of Rare Words
// with Subword Units"; GPT-2's byte-level variant; the same loop as HF tokenizers'
// BpeTrainer). Deterministic: the most frequent adjacent pair is merged, ties broken by the
// smaller (left id, right id); a merged string that already exists keeps its id.
// Initial vocabulary: the 256 bytes in byte order (ids 0..255, GPT-2 alphabet strings).
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace prefopt {

Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl> impl);

Tokenizer train_bpe(const std::vector<std::string>& corpus, int vocab_size, const std::vector<std::string>& special_tokens,
                    bool split_digits) {
  PREFOPT_REQUIRE(vocab_size >= 256 + int(special_tokens.size()), "train_bpe",
                  fmt::format("vocab_size {} is smaller than 256 bytes + {} special tokens", vocab_size,
                              special_tokens.size()),
                  "use e.g. 512..4096");
  Regex re(split_digits ? kQwen2Pattern : kGpt2Pattern);
  // Word counts (pre-tokens of the GPT-2 pattern), in first-seen order for determinism.
  std::unordered_map<std::string, size_t> index;
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  std::vector<std::pair<size_t, size_t>> m;
  for (const std::string& raw : corpus) {
    std::string text = valid_utf8(raw) ? raw : sanitize_utf8(raw);
    m.clear();
    re.find_all(text, 0, text.size(), m);
    for (auto [b, e] : m) {
      std::string w = text.substr(b, e - b);
      auto it = index.find(w);
      if (it == index.end()) {
        index.emplace(w, words.size());
        std::vector<int32_t> sym;
        for (unsigned char c : w) sym.push_back(c);
        words.push_back(sym);
        counts.push_back(1);
      } else {
        counts[it->second]++;
      }
    }
  }
  auto key = [](int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); };
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      uint64_t k = key(words[w][i], words[w][i + 1]);
      pair_count[k] += counts[w];
      auto& pw = pair_words[k];
      if (pw.empty() || pw.back() != int32_t(w)) pw.push_back(int32_t(w));
    }
  struct Entry {
    int64_t count;
    uint64_t pair;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::priority_queue<Entry> heap;
  for (auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_to_unicode(uint8_t(b)));
  std::unordered_map<std::string, int32_t> tok_id;
  for (int b = 0; b < 256; ++b) tok_id[tokens[b]] = b;
  std::vector<std::pair<int32_t, int32_t>> merges;
  const int target = vocab_size - int(special_tokens.size());
  std::vector<int32_t> seen(words.size(), -1);
  while (int(tokens.size()) < target && !heap.empty()) {
    Entry top = heap.top();
    heap.pop();
    auto pc = pair_count.find(top.pair);
    if (pc == pair_count.end() || pc->second != top.count) continue;  // stale
    if (top.count <= 0) break;
    int32_t a = int32_t(top.pair >> 32), b = int32_t(top.pair & 0xFFFFFFFFu);
    std::string s = tokens[a] + tokens[b];
    int32_t c;
    auto it = tok_id.find(s);
    if (it != tok_id.end()) {
      c = it->second;
    } else {
      c = int32_t(tokens.size());
      tokens.push_back(s);
      tok_id[s] = c;
    }
    merges.push_back({a, b});
    std::vector<uint64_t> touched;
    std::vector<int32_t> affected = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    for (int32_t w : affected) {
      if (seen[w] == int32_t(merges.size())) continue;
      seen[w] = int32_t(merges.size());
      auto& sym = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < sym.size(); ++i) has |= sym[i] == a && sym[i + 1] == b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        uint64_t k = key(sym[i], sym[i + 1]);
        pair_count[k] -= counts[w];
        touched.push_back(k);
      }
      std::vector<int32_t> out;
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          out.push_back(c);
          i += 2;
        } else {
          out.push_back(sym[i++]);
        }
      }
      sym.swap(out);
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        uint64_t k = key(sym[i], sym[i + 1]);
        pair_count[k] += counts[w];
        touched.push_back(k);
        auto& pw = pair_words[k];
        if (pw.empty() || pw.back() != w) pw.push_back(w);
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      auto& cnt = pair_count[k];
      if (cnt > 0) heap.push({cnt, k});
    }
  }

  auto t = std::make_shared<TokenizerImpl>();
  t->source = "train_bpe";
  BpeModel& bm = t->model;
  bm.id_to_token = tokens;
  for (size_t i = 0; i < tokens.size(); ++i) bm.vocab.emplace(tokens[i], int32_t(i));
  uint32_t rank = 0;
  for (auto [a, b] : merges) {
    uint64_t k = key(a, b);
    if (!bm.merges.count(k)) {
      bm.merges[k] = {rank, bm.vocab[tokens[a] + tokens[b]]};
      bm.merge_list.push_back({a, b});
    }
    ++rank;
  }
  json added = json::array();
  for (size_t i = 0; i < special_tokens.size(); ++i)
    added.push_back({{"id", int32_t(tokens.size() + i)}, {"content", special_tokens[i]}, {"special", true}});
  json pipe;
  if (split_digits)  // Qwen2's layout: a Split on its pattern, then bytes
    pipe["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  else
    pipe["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  pipe["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  pipe["post_processor"] = nullptr;
  pipe["normalizer"] = nullptr;
  parse_pipeline(*t, pipe, "train_bpe");
  parse_added_tokens(*t, added, "train_bpe");
  t->finalize();
  for (const char* e : {"<|endoftext|>", "</s>", "<|im_end|>"})
    if (!t->eos) t->eos = t->token_id(e);
  for (const char* b : {"<|startoftext|>", "<s>", "<bos>"})
    if (!t->bos) t->bos = t->token_id(b);
  for (const char* p : {"<|pad|>", "<pad>"})
    if (!t->pad) t->pad = t->token_id(p);
  if (!t->pad) t->pad = t->eos;
  return make_tokenizer(t);
}

}  // namespace prefopt
