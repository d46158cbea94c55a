// Fuzz target: the safetensors header parser (io::parse_header) on a whole
// file's bytes. Beyond "no crash", every header it accepts must describe
// tensors inside the data section whose byte spans match shape x dtype.
#include <cstdlib>
#include <string_view>

#include "fuzz/fuzz_common.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  prefopt::fuzz::fuzz_guard([&] {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto h = prefopt::io::parse_header(bytes, size, "fuzz.safetensors");
    if (h.data_start > size) std::abort();
    for (const auto& t : h.tensors) {
      if (t.begin > t.end || t.end > size - h.data_start) std::abort();
      unsigned __int128 n = prefopt::io::dtype_size(t.dtype);
      for (int64_t d : t.shape) {
        if (d < 0) std::abort();
        n *= static_cast<uint64_t>(d);
        if (n > size) break;  // only reachable if the span check below fails
      }
      if (n != t.end - t.begin) std::abort();
    }
  });
  return 0;
}
