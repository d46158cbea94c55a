// Unicode normalizers of tokenizer.json (NFC / NFD / NFKC / NFKD, Lowercase): the normal
// forms against UAX #15's examples and Python's unicodedata (values written out below),
// and the tokenizers that declare them: text whose normal forms differ must encode as
// its normal form does, and (negative control) differently without the normalizer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

const std::string D = std::string(PREFOPT_SHARED_DATA) + "/tokenizers/";

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string o;
  for (unsigned char c : s) o += d[c >> 4], o += d[c & 15];
  return o;
}

// A copy of Qwen2's tokenizer (NFC by declaration) with another normalizer.
Tokenizer qwen2_with(const nlohmann::json& normalizer) {
  static const nlohmann::json base = [] {
    auto dir = fs::temp_directory_path() / ("prefopt_norm_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    Tokenizer::load(D + "qwen2").save((dir / "tokenizer.json").string());
    std::ifstream in(dir / "tokenizer.json");
    nlohmann::json j = nlohmann::json::parse(in);
    fs::remove_all(dir);
    return j;
  }();
  EXPECT_EQ(base["normalizer"]["type"], "NFC");  // what Qwen2 declares
  nlohmann::json j = base;
  j["normalizer"] = normalizer;
  return Tokenizer::from_json_text(j.dump(), "qwen2-modified");
}

}  // namespace

TEST(Normalize, FormsMatchUnicodedata) {
  struct V {
    const char* in;
    const char *nfc, *nfd, *nfkc, *nfkd;  // hex of UTF-8 (Python 3.11 unicodedata.normalize)
  } vs[] = {
      {"\u1E9B\u0323", "e1ba9bcca3", "c5bfcca3cc87", "e1b9a9", "73cca3cc87"},  // UAX #15 figure 6
      {"e\u0301", "c3a9", "65cc81", "c3a9", "65cc81"},
      {"\u00E9", "c3a9", "65cc81", "c3a9", "65cc81"},
      {"\u212B", "c385", "41cc8a", "c385", "41cc8a"},                          // ANGSTROM SIGN
      {"\uFB01", "efac81", "efac81", "6669", "6669"},                          // ligature fi
      {"\uFF11\uFF12\uFF13", "efbc91efbc92efbc93", "efbc91efbc92efbc93", "313233", "313233"},  // full-width
      {"\u2460", "e291a0", "e291a0", "31", "31"},                              // circled 1
      {"\u1100\u1161\u11A8", "eab081", "e18480e185a1e186a8", "eab081", "e18480e185a1e186a8"},  // Hangul jamo
      {"A\u0308\u0308x", "c384cc8878", "41cc88cc8878", "c384cc8878", "41cc88cc8878"},
  };
  for (auto& v : vs) {
    EXPECT_EQ(hex(unicode_normalize(v.in, UnicodeForm::NFC)), v.nfc) << v.in;
    EXPECT_EQ(hex(unicode_normalize(v.in, UnicodeForm::NFD)), v.nfd) << v.in;
    EXPECT_EQ(hex(unicode_normalize(v.in, UnicodeForm::NFKC)), v.nfkc) << v.in;
    EXPECT_EQ(hex(unicode_normalize(v.in, UnicodeForm::NFKD)), v.nfkd) << v.in;
    // The aligned form gives the same text, one offset per byte, each inside the input.
    for (auto f : {UnicodeForm::NFC, UnicodeForm::NFD, UnicodeForm::NFKC, UnicodeForm::NFKD}) {
      std::vector<uint32_t> al;
      std::string o = unicode_normalize_aligned(v.in, f, al);
      EXPECT_EQ(o, unicode_normalize(v.in, f));
      ASSERT_EQ(al.size(), o.size());
      for (size_t i = 0; i < al.size(); ++i) {
        EXPECT_LT(al[i], std::string(v.in).size());
        if (i) EXPECT_LE(al[i - 1], al[i]);
      }
    }
  }
  // Offsets point at the character that produced each byte: "ab" + "e\u0301" + "c" under
  // NFC gives "ab\u00E9c"; the composed é comes from byte 2, the c from byte 5.
  std::vector<uint32_t> al;
  EXPECT_EQ(unicode_normalize_aligned("abe\u0301c", UnicodeForm::NFC, al), "ab\u00E9c");
  EXPECT_EQ(al, (std::vector<uint32_t>{0, 1, 2, 2, 5}));
  // Invalid UTF-8 is normalized after U+FFFD replacement, never a crash.
  EXPECT_EQ(unicode_normalize("a\xFF" "e\u0301", UnicodeForm::NFC), "a\uFFFD\u00E9");
}

TEST(Normalize, LowercaseIsUnicode) {
  std::vector<uint32_t> al;
  EXPECT_EQ(unicode_lowercase_aligned("ÀÉÎ Straße ΣΑΣ ABC", al), "àéî straße σασ abc");
  // Rust's char::to_lowercase (HF tokenizers) maps U+0130 to "i" + U+0307.
  EXPECT_EQ(unicode_lowercase_aligned("\u0130", al), "i\u0307");
  EXPECT_EQ(al, (std::vector<uint32_t>{0, 0, 0}));
}

TEST(Normalize, Qwen2DeclaresNfcAndItApplies) {
  Tokenizer nfc = Tokenizer::load(D + "qwen2");
  Tokenizer none = qwen2_with(nullptr);
  const std::string composed = "Caf\u00E9 cr\u00E8me \u00C5", decomposed = "Cafe\u0301 cre\u0300me A\u030A";
  EXPECT_EQ(nfc.encode(decomposed), nfc.encode(composed));
  EXPECT_EQ(nfc.encode("\u212B"), nfc.encode("\u00C5"));
  // Negative control: without the normalizer, the decomposed text is other tokens.
  EXPECT_NE(none.encode(decomposed), none.encode(composed));
  EXPECT_EQ(none.encode(composed), nfc.encode(composed));  // NFC text is unaffected
  // Offsets still cover the input: the last token ends at the end of the decomposed text.
  std::vector<std::pair<size_t, size_t>> off;
  auto ids = nfc.encode_with_offsets(decomposed, false, &off);
  ASSERT_EQ(off.size(), ids.size());
  EXPECT_EQ(off.back().second, decomposed.size());
  for (size_t i = 1; i < off.size(); ++i) EXPECT_LE(off[i - 1].second, off[i].first + 0) << i;
  // NFC does not fold compatibility characters.
  EXPECT_NE(nfc.encode("\uFB01 \uFF11\uFF12\uFF13"), nfc.encode("fi 123"));
}

TEST(Normalize, NfkcFoldsCompatibilityCharacters) {
  Tokenizer nfkc = qwen2_with({{"type", "NFKC"}});
  Tokenizer nfkd = qwen2_with({{"type", "NFKD"}});
  Tokenizer nfd = qwen2_with({{"type", "NFD"}});
  Tokenizer none = qwen2_with(nullptr);
  EXPECT_EQ(nfkc.encode("\uFB01ne \uFF11\uFF12\uFF13 \u2460"), nfkc.encode("fine 123 1"));
  EXPECT_NE(none.encode("\uFB01ne \uFF11\uFF12\uFF13 \u2460"), none.encode("fine 123 1"));
  EXPECT_EQ(nfkc.encode("Cafe\u0301"), none.encode("Caf\u00E9"));
  // NFD / NFKD: the decomposed bytes, whatever the input's form.
  EXPECT_EQ(nfd.encode("Caf\u00E9"), none.encode("Cafe\u0301"));
  EXPECT_EQ(nfkd.encode("\u1E9B\u0323"), none.encode("s\u0323\u0307"));
  // A Sequence with a normalizer in it works the same.
  Tokenizer seq = qwen2_with({{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}, {{"type", "Lowercase"}}}}});
  EXPECT_EQ(seq.encode("\uFF21\uFF22C \u00C9"), none.encode("abc \u00E9"));
}
