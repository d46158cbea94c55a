// Fuzz target: tokenizer.json text -> Tokenizer::from_json_text, then encode
// (with and without special tokens, with offsets) and decode of a few fixed
// strings, including invalid UTF-8. Round-trip invariants: offsets lie inside
// the text and every id is below vocab_size().
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_common.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  prefopt::fuzz::fuzz_guard([&] {
    std::string text(reinterpret_cast<const char*>(data), size);
    prefopt::Tokenizer tok = prefopt::Tokenizer::from_json_text(text, "fuzz/tokenizer.json");
    static const std::string kInputs[] = {"", "Hello world! 123 <s> </s>", "  leading\tspaces\n\nnew lines  ",
                                          "caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
                                          std::string("bad \xff\xfe utf8 \xc3", 14), "<|im_start|>user\nhi<|im_end|>"};
    for (const auto& s : kInputs) {
      for (bool special : {false, true}) {
        std::vector<std::pair<size_t, size_t>> off;
        auto ids = tok.encode_with_offsets(s, special, &off);
        if (off.size() != ids.size()) std::abort();
        for (int32_t id : ids)
          if (id < 0 || id >= tok.vocab_size()) std::abort();
        (void)tok.decode(ids, false);
        (void)tok.decode(ids, true);
      }
    }
    (void)tok.decode({0, 1, 2, tok.vocab_size() - 1, tok.vocab_size(), -1}, false);
  });
  return 0;
}
