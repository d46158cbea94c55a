// Fuzz target: GGUF reading. The bytes are parsed by io::parse_gguf (the
// reader of read_gguf); for an accepted file every tensor that the reader can
// convert is read as f32 (its bytes were checked to lie inside the file). The
// same bytes as a .gguf scratch file go through the tokenizer's GGUF
// vocabulary loader, and an accepted vocabulary encodes a few strings.
#include <cstdlib>

#include "fuzz/fuzz_common.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static prefopt::fuzz::ScratchFile file(".gguf");
  prefopt::fuzz::fuzz_guard([&] {
    auto g = prefopt::io::parse_gguf(std::string(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
    for (const auto& t : g.tensors) {
      if (t.bytes == 0) continue;
      if (t.bytes > size || g.data_start + t.offset + t.bytes > size) std::abort();
      auto v = g.tensor_f32(t);
      (void)v;
    }
  });
  const std::string& path = file.write(data, size);
  prefopt::fuzz::fuzz_guard([&] {
    auto tok = prefopt::Tokenizer::load(path);
    for (bool special : {false, true}) {
      auto ids = tok.encode("Hello world! caf\xc3\xa9 123 \xff", special);
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();
      (void)tok.decode(ids, true);
    }
  });
  return 0;
}
