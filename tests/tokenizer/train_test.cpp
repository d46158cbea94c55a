// BPE trainer: hand-derived merges on a tiny corpus, determinism, round trip, and
// save() -> load() giving identical encodings.
#include <gtest/gtest.h>

#include <unistd.h>

#include "core/fs.h"
#include "core/jsonl.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

using namespace prefopt;

TEST(TrainBpe, HandDerivedMerges) {
  // Pre-tokens: "ab", " ab", " ab", " cd". Pair counts: (a,b)=3, (' ',a)=2, (' ',c)=1, (c,d)=1.
  // Merge 1: a+b -> 256 "ab". Then (' ',ab)=2 beats (' ',c)=1 and (c,d)=1 -> 257 " ab".
  // Merge 3: tie (' ',c) vs (c,d) at 1: smaller pair (32, 99) wins -> 258 " c".
  auto tok = train_bpe({"ab ab ab cd"}, 259 + 1, {"<|endoftext|>"});
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.id_to_token(256), "ab");
  EXPECT_EQ(tok.id_to_token(257), "\xC4\xA0" "ab");  // "Ġab"
  EXPECT_EQ(tok.id_to_token(258), "\xC4\xA0" "c");
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 259);
  EXPECT_EQ(tok.eos_id(), 259);
  EXPECT_EQ(tok.encode("ab ab cd"), (std::vector<int32_t>{256, 257, 258, 'd'}));
  EXPECT_EQ(tok.encode("ab<|endoftext|>"), (std::vector<int32_t>{256, 259}));
}

TEST(TrainBpe, GsmDeterministicRoundTripReload) {
  std::vector<std::string> corpus;
  for_each_jsonl(PREFOPT_SHARED_DATA "/gsm8k/test.jsonl", [&](const json& row, size_t line) {
    if (corpus.size() < 400) corpus.push_back(row["question"].get<std::string>() + "\n" + row["answer"].get<std::string>());
  });
  auto a = train_bpe(corpus, 1024, {"<|endoftext|>", "<|pad|>"});
  auto b = train_bpe(corpus, 1024, {"<|endoftext|>", "<|pad|>"});
  EXPECT_EQ(a.vocab_size(), 1024);
  std::string dir = std::string(PREFOPT_BINARY_DIR) + "/tokenizer_train_test." + std::to_string(getpid());
  make_dirs(dir);
  a.save(dir + "/a.json");
  b.save(dir + "/b.json");
  EXPECT_EQ(read_file(dir + "/a.json"), read_file(dir + "/b.json"));  // deterministic
  auto j = nlohmann::json::parse(read_file(dir + "/a.json"));
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_EQ(j["model"]["vocab"].size(), 1022u);
  EXPECT_EQ(j["model"]["merges"].size(), 1022u - 256u);
  auto c = Tokenizer::load(dir + "/a.json");
  EXPECT_EQ(c.vocab_size(), 1024);
  EXPECT_EQ(c.eos_id(), a.eos_id());
  size_t bytes = 0, toks = 0;
  for (size_t i = 0; i < corpus.size(); i += 7) {
    auto ids = a.encode(corpus[i]);
    EXPECT_EQ(ids, c.encode(corpus[i]));
    EXPECT_EQ(a.decode(ids), corpus[i]);
    bytes += corpus[i].size();
    toks += ids.size();
  }
  EXPECT_LT(double(toks), 0.45 * double(bytes));  // 1k merges compress English+math > 2.2x
  auto files = a.save_pretrained(dir + "/model");
  EXPECT_EQ(files.size(), 3u);
  auto d = Tokenizer::load(dir + "/model");
  EXPECT_EQ(d.eos_id(), a.eos_id());
  EXPECT_EQ(d.pad_id(), a.pad_id());
  EXPECT_EQ(d.encode(corpus[0]), a.encode(corpus[0]));
  remove_all(dir);
}

// split_digits: every digit is its own token (no merge can cross a digit
// boundary), the rest still merges; save -> load keeps the encodings.
TEST(TrainBpe, SplitDigits) {
  std::vector<std::string> corpus;
  for (int i = 0; i < 200; ++i) corpus.push_back("Tom has " + std::to_string(100 + i * 37) + " apples and 1234 pears.");
  auto t = train_bpe(corpus, 400, {"<|endoftext|>"}, true);
  auto ids = t.encode("Tom has 98765 apples.");
  int digit_tokens = 0;
  for (auto id : ids) {
    std::string s = t.decode({id});
    bool has_digit = s.find_first_of("0123456789") != std::string::npos;
    if (has_digit) {
      EXPECT_EQ(s.size(), 1u) << "token '" << s << "' holds more than one digit";
      ++digit_tokens;
    }
  }
  EXPECT_EQ(digit_tokens, 5);
  EXPECT_LT(ids.size(), 12u);  // "Tom has" and " apples" still merged
  auto plain = train_bpe(corpus, 400, {"<|endoftext|>"});
  EXPECT_LT(plain.encode("Tom has 1234 pears.").size(), t.encode("Tom has 1234 pears.").size());
  std::string dir = std::string(PREFOPT_BINARY_DIR) + "/tokenizer_split_digits." + std::to_string(getpid());
  make_dirs(dir);
  t.save(dir + "/t.json");
  auto re = Tokenizer::load(dir + "/t.json");
  for (auto& c : corpus) EXPECT_EQ(re.encode(c), t.encode(c));
  EXPECT_EQ(re.decode(re.encode(corpus[3])), corpus[3]);
  remove_all(dir);
}
