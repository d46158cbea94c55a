// Added-token semantics (HF AddedVocabulary) on a hand-made byte-level tokenizer.json whose
// model has only the 256 byte tokens (id = byte value), so expected ids are hand-derived;
// and concurrent encoding equals serial encoding.
#include <gtest/gtest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "core/jsonl.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

using namespace prefopt;

static Tokenizer bytes_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(uint8_t(b))] = b;
  nlohmann::json j = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens",
       {{{"id", 256}, {"content", "<mask>"}, {"lstrip", true}, {"special", true}},
        {{"id", 257}, {"content", "[X]"}, {"rstrip", true}, {"special", true}},
        {{"id", 258}, {"content", "cat"}, {"single_word", true}, {"special", false}},
        {{"id", 259}, {"content", "<|a|>"}, {"special", true}},
        {{"id", 260}, {"content", "<|a|><|b|>"}, {"special", true}}}}};
  return Tokenizer::from_json_text(j.dump(), "bytes.json");
}

TEST(AddedTokens, StripSingleWordLongest) {
  auto t = bytes_tokenizer();
  using V = std::vector<int32_t>;
  EXPECT_EQ(t.encode("a  <mask>"), (V{'a', 256}));            // lstrip eats the spaces before
  EXPECT_EQ(t.encode("[X]  b"), (V{257, 'b'}));               // rstrip eats the spaces after
  EXPECT_EQ(t.encode("cat concat"), (V{258, ' ', 'c', 'o', 'n', 'c', 'a', 't'}));  // single_word
  EXPECT_EQ(t.encode("<|a|><|b|>x<|a|>"), (V{260, 'x', 259}));  // longest match first
  EXPECT_EQ(t.decode({'a', 256, 258}), "a<mask>cat");
  EXPECT_EQ(t.decode({'a', 256, 258}, true), "acat");          // only special ones skipped
  std::vector<std::pair<size_t, size_t>> offs;
  auto ids = t.encode_with_offsets("a  <mask>", false, &offs);
  ASSERT_EQ(offs.size(), 2u);
  EXPECT_EQ(offs[0], (std::pair<size_t, size_t>{0, 1}));
  EXPECT_EQ(offs[1], (std::pair<size_t, size_t>{1, 9}));       // the match includes the stripped spaces
}

TEST(AddedTokens, ConcurrentEncodeEqualsSerial) {
  auto tok = Tokenizer::load(PREFOPT_SHARED_DATA "/tokenizers/qwen2");
  std::vector<std::string> texts;
  for_each_jsonl(PREFOPT_SHARED_DATA "/gsm8k/test.jsonl", [&](const json& r, size_t) {
    if (texts.size() < 300) texts.push_back(r["question"].get<std::string>() + "\n" + r["answer"].get<std::string>());
  });
  std::vector<std::vector<int32_t>> serial, a(texts.size()), b(texts.size());
  for (auto& s : texts) serial.push_back(tok.encode(s));
  std::thread t1([&] { for (size_t i = 0; i < texts.size(); ++i) a[i] = tok.encode(texts[i]); });
  std::thread t2([&] { for (size_t i = texts.size(); i-- > 0;) b[i] = tok.encode(texts[i]); });
  t1.join();
  t2.join();
  EXPECT_EQ(a, serial);
  EXPECT_EQ(b, serial);
}

#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"

// Bad input is an Error naming the file (and line), what was expected, and a HINT.
TEST(TokenizerErrors, NamedAndHinted) {
  auto msg = [](const std::string& path) -> std::string {
    try {
      Tokenizer::load(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  std::string bert = PREFOPT_SHARED_DATA "/tokenizers/llama.cpp-vocab/ggml-vocab-bert-bge.gguf";
  std::string m = msg(bert);
  EXPECT_NE(m.find(bert), std::string::npos) << m;
  EXPECT_NE(m.find("\"bert\""), std::string::npos) << m;
  EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  std::string dir = std::string(PREFOPT_BINARY_DIR) + "/tokenizer_err." + std::to_string(getpid());
  make_dirs(dir);
  atomic_write(dir + "/tokenizer.model", "SGVsbG8= 0\nV29ybGQ= 1\nnot-a-valid-line\n");
  m = msg(dir + "/tokenizer.model");
  EXPECT_NE(m.find(dir + "/tokenizer.model:3"), std::string::npos) << m;
  atomic_write(dir + "/tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
  m = msg(dir + "/tokenizer.json");
  EXPECT_NE(m.find("WordPiece"), std::string::npos) << m;
  EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  atomic_write(dir + "/tokenizer.json", "{\"model\": ");
  m = msg(dir + "/tokenizer.json");
  EXPECT_NE(m.find("not valid JSON"), std::string::npos) << m;
  m = msg(dir + "/missing");
  EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  remove_all(dir);
}
