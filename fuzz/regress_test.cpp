// Regressions found by the fuzz targets (docs/fuzzing.md): each input once
// made a parser crash, hang or leak an exception other than prefopt::Error
// (the CLI's exit 3). Each test asserts the user error it gives now, naming
// the file (and line or byte) and what was wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "io/gguf.h"
#include "pipeline/iterate.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string scratch_dir() {
  std::string d = std::string(PREFOPT_BINARY_DIR) + "/fuzz_regress." + std::to_string(::getpid());
  prefopt::make_dirs(d);
  return d;
}

// The error message of f(), or "" when it did not throw prefopt::Error.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const prefopt::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// A number outside double's range (1e400) was nlohmann's out_of_range, not a
// parse error: it escaped for_each_jsonl and the CLI exited 3.
TEST(FuzzRegress, JsonlNumberOverflowIsAUserErrorWithFileAndLine) {
  const std::string dir = scratch_dir(), path = dir + "/big.jsonl";
  prefopt::atomic_write(path, "{\"prediction\": \"#### 7\", \"answer\": \"7\"}\n{\"prediction\": 1e400, \"answer\": \"7\"}\n");
  const std::string msg = error_of([&] { prefopt::read_jsonl(path); });
  EXPECT_NE(msg.find(path + ":2"), std::string::npos) << msg;
  int rc = -1;
  const std::string out = prefopt::testing::run_prefopt("grade --kind gsm8k --input " + path, &rc, true);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find(path + ":2"), std::string::npos) << out;
  prefopt::remove_all(dir);
}

namespace {

// A GGUF file with a gpt2 vocabulary of five tokens; `edit` changes the writer first.
std::string vocab_gguf(const std::string& path, const std::function<void(prefopt::io::GgufWriter&)>& edit) {
  prefopt::io::GgufWriter w;
  w.add_string("general.architecture", "llama");
  edit(w);
  if (!w.has_key("tokenizer.ggml.model")) w.add_string("tokenizer.ggml.model", "gpt2");
  if (!w.has_key("tokenizer.ggml.tokens")) w.add_string_array("tokenizer.ggml.tokens", {"<s>", "a", "b", "ab", "\xc4\xa0"});
  if (!w.has_key("tokenizer.ggml.merges")) w.add_string_array("tokenizer.ggml.merges", {"a b"});
  w.write(path);
  return path;
}

}  // namespace

// The tokenizer's GGUF reader indexed token types and BOS/EOS ids without
// checking them against the vocabulary (reads out of bounds), and a key of the
// wrong GGUF type was nlohmann's type_error (exit 3).
TEST(FuzzRegress, GgufVocabularyChecksTypesIdsAndValueTypes) {
  const std::string dir = scratch_dir();
  const std::string ok = vocab_gguf(dir + "/ok.gguf", [](auto&) {});
  EXPECT_EQ(prefopt::Tokenizer::load(ok).encode("ab"), (std::vector<int32_t>{3}));
  struct Case {
    const char* name;
    std::function<void(prefopt::io::GgufWriter&)> edit;
    const char* expect;
  } cases[] = {
      {"types", [](auto& w) { w.add_i32_array("tokenizer.ggml.token_type", {3, 1}); }, "token_type has 2 entries for 5"},
      {"bos", [](auto& w) { w.add_u32("tokenizer.ggml.bos_token_id", 5); }, "bos_token_id = 5 is not a token id"},
      {"eos", [](auto& w) { w.add_i32("tokenizer.ggml.eos_token_id", -1); }, "eos_token_id = -1 is not a token id"},
      {"model", [](auto& w) { w.add_u32("tokenizer.ggml.model", 7); }, "unexpected tokenizer.ggml.* value"},
      {"tokens", [](auto& w) { w.add_i32_array("tokenizer.ggml.tokens", {1, 2}); }, "unexpected tokenizer.ggml.* value"},
  };
  for (const auto& c : cases) {
    const std::string path = vocab_gguf(dir + "/" + c.name + ".gguf", c.edit);
    const std::string msg = error_of([&] { prefopt::Tokenizer::load(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
  }
  prefopt::remove_all(dir);
}

// A string length near 2^64 wrapped the tokenizer reader's bounds check
// (p + n overflowed) and it then read outside the file.
TEST(FuzzRegress, GgufHugeStringLengthIsTruncation) {
  std::string bytes = "GGUF";
  auto put = [&](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(3, 4), put(0, 8), put(1, 8);  // version, no tensors, one key
  put(~uint64_t(0) - 7, 8);         // key length: wraps p + n to 16 when p = 32
  bytes += std::string(16, 'k');
  const std::string dir = scratch_dir(), path = dir + "/huge.gguf";
  prefopt::atomic_write(path, bytes);
  std::string msg = error_of([&] { prefopt::Tokenizer::load(path); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  msg = error_of([&] { prefopt::io::parse_gguf(bytes, "huge.gguf"); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  prefopt::remove_all(dir);
}

// io::parse_gguf: dimensions whose element count overflowed 64 bits passed the
// size check; an alignment is now a power of two up to 2^30 (a huge one
// overflowed align_up).
TEST(FuzzRegress, GgufTensorSizeAndAlignmentChecks) {
  auto file = [](uint32_t align) {
    prefopt::io::GgufWriter w(align);  // writes general.alignment = align
    w.add_tensor("t", {4}, prefopt::io::GgmlType::F32, [] { return std::string(16, '\0'); });
    const std::string dir = scratch_dir(), path = dir + "/t.gguf";
    w.write(path);
    std::string bytes = prefopt::read_file(path);
    prefopt::remove_all(dir);
    return bytes;
  };
  std::string ok = file(32);
  const auto g = prefopt::io::parse_gguf(ok, "ok.gguf");
  EXPECT_EQ(g.tensor_f32(g.tensors[0]), std::vector<float>(4, 0.f));
  // general.alignment = 24: not a power of two.
  std::string msg = error_of([&] { prefopt::io::parse_gguf(file(24), "a.gguf"); });
  EXPECT_NE(msg.find("power of two"), std::string::npos) << msg;
  // Rewrite the one dimension (u64 after the tensor name and n_dims) to 2^40 - 1 x 4 dims.
  const std::string name = std::string("\x01\0\0\0\0\0\0\0t", 9);
  size_t at = ok.find(name);
  ASSERT_NE(at, std::string::npos);
  std::string big = ok.substr(0, at + 9);
  auto put = [&](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) big += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(4, 4);
  for (int k = 0; k < 4; ++k) put((uint64_t(1) << 40) - 1, 8);
  big += ok.substr(at + 9 + 4 + 8);  // type, offset, padding, data
  msg = error_of([&] { prefopt::io::parse_gguf(big, "big.gguf"); });
  EXPECT_NE(msg.find("more than 2^60 elements"), std::string::npos) << msg;
}

// prefopt iterate read counts as doubles and cast them to int / uint64
// (undefined for 1e300, NaN or a negative seed; a string silently gave the
// default). Counts and the seed are TOML integers in range now.
TEST(FuzzRegress, IterateTomlCountsAreCheckedIntegers) {
  const std::string dir = scratch_dir();
  const std::string base = "model = \"m\"\nprompts = \"p.jsonl\"\nheld_out = \"h.jsonl\"\n";
  struct Case {
    const char* line;
    const char* expect;
  } cases[] = {{"rounds = 1e300", "rounds must be an integer"},
               {"n_samples = nan", "n_samples must be an integer"},
               {"eval_n = \"8\"", "eval_n must be an integer"},
               {"seed = -1", "seed = -1 is out of range"},
               {"max_new_tokens = 4294967296", "max_new_tokens = 4294967296 is out of range"}};
  for (const auto& c : cases) {
    const std::string path = dir + "/c.toml";
    prefopt::atomic_write(path, base + c.line + "\n");
    const std::string msg = error_of([&] { prefopt::pipeline::IterateConfig::from_toml(path); });
    EXPECT_NE(msg.find(path + ":4"), std::string::npos) << c.line << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.line << ": " << msg;
  }
  prefopt::atomic_write(dir + "/ok.toml", base + "rounds = 3\nseed = 7\n");
  const auto ok = prefopt::pipeline::IterateConfig::from_toml(dir + "/ok.toml");
  EXPECT_EQ(ok.loop.rounds, 3);
  EXPECT_EQ(ok.loop.seed, 7u);
  prefopt::remove_all(dir);
}

// A malformed added_tokens.json beside vocab.json + merges.txt escaped as
// nlohmann's parse_error (exit 3).
TEST(FuzzRegress, MalformedAddedTokensJsonIsAUserError) {
  const std::string dir = scratch_dir();
  prefopt::atomic_write(dir + "/vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
  prefopt::atomic_write(dir + "/merges.txt", "#version: 0.2\na b\n");
  prefopt::atomic_write(dir + "/added_tokens.json", "{\"<x>\": 3}");
  EXPECT_EQ(prefopt::Tokenizer::load(dir).token_to_id("<x>"), 3);
  for (const char* bad : {"{\"<x>\": 3", "[3]"}) {
    prefopt::atomic_write(dir + "/added_tokens.json", bad);
    const std::string msg = error_of([&] { prefopt::Tokenizer::load(dir); });
    EXPECT_NE(msg.find(dir + "/added_tokens.json"), std::string::npos) << bad << ": " << msg;
  }
  prefopt::remove_all(dir);
}
