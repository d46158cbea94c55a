// prefopt fuzz targets: the shared contract. A target feeds its input to a
// parser inside fuzz_guard(): a prefopt::Error (bad input, exit 2 in the CLI)
// is the accepted outcome; any other exception escaping is an internal error
// (the CLI would exit 3) and aborts, as do crashes and sanitizer reports.
// Built with libFuzzer (scripts/fuzz.sh) or with fuzz/driver.cpp (ctest).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "core/error.h"

namespace prefopt::fuzz {

template <typename F>
void fuzz_guard(F&& f) {
  try {
    f();
  } catch (const prefopt::Error&) {
    // bad input, reported to the user: accepted
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: internal error escaped (the CLI would exit 3): %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: a non-std exception escaped\n");
    std::abort();
  }
}

// A per-process scratch file for parsers that only read paths: written fresh
// on every call, removed at exit.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& suffix) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/prefopt-fuzz-" + std::to_string(::getpid()) + suffix;
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  const std::string& write(const uint8_t* data, size_t size) {
    FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace prefopt::fuzz
