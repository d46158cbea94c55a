// A standalone stand-in for libFuzzer, for compilers without it (the GCC build
// and ctest): runs LLVMFuzzerTestOneInput on every seed file, then on random
// mutations of the seeds for a fixed time with a fixed random seed.
//
//   fuzz_X [--seconds N] [--seed S] [--max-seed-bytes B] FILE_OR_DIR...
//
// Seeds longer than B bytes (default 16384) are cut to their first B bytes.
// A crash, an abort (an internal error escaping a target) or an input running
// longer than --timeout seconds (default 20) saves the input as
// fuzz-crash-<pid>.bin in the working directory and exits non-zero; running the
// driver on that file alone reproduces it with the target's message. Warnings
// printed by the library are silenced during the mutation phase.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// The input being run, for the crash handler (a copy the handler may read).
std::vector<uint8_t> g_current;
int g_saved_stderr = 2;
const char* g_phase = "seed";

void say(const char* s) { (void)!::write(g_saved_stderr, s, std::strlen(s)); }

void on_crash(int sig) {
  char name[64];
  std::snprintf(name, sizeof name, "fuzz-crash-%d.bin", static_cast<int>(::getpid()));
  int fd = ::open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    (void)!::write(fd, g_current.data(), g_current.size());
    ::close(fd);
  }
  char msg[256];
  std::snprintf(msg, sizeof msg, "fuzz driver: %s on a %s input of %zu bytes, saved to %s (run the target on it)\n",
                sig == SIGALRM ? "timeout" : strsignal(sig), g_phase, g_current.size(), name);
  say(msg);
  ::signal(sig, SIG_DFL);
  if (sig == SIGALRM) ::_exit(70);
  ::raise(sig);
}

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
};

// Tokens the parsers care about: JSON, TOML, Jinja, LaTeX, numbers at the edges.
const char* const kTokens[] = {
    "{", "}", "[", "]", "\"", ":", ",", "0", "-1", "1e400", "-1e400", "1e-400", "NaN", "inf", "null", "true",
    "false", "18446744073709551616", "9223372036854775807", "-9223372036854775808", "4294967296", "{%", "%}",
    "{{", "}}", "{#", "#}", "{% for x in ", "{% endfor %}", "{% if ", "{% endif %}", "loop.", "|tojson", "range(",
    "messages", "\\frac", "\\boxed{", "\\sqrt", "^", "\\left(", "\\right)", "\\pm", "=", "\n", "\r\n", "\t",
    "\xff", "\xc3\xa9", "\xe2\x96\x81", "\xf0\x9f\x98\x80", "\x00", "[train]", "= \"", "'''", "\"\"\"",
    "<0x0A>", "<s>", "</s>", "\\u0000", "\\ud800", "GGUF", "__metadata__", "data_offsets", "shape", "dtype"};

void mutate(std::vector<uint8_t>& d, const std::vector<std::vector<uint8_t>>& seeds, Rng& r, size_t max_len) {
  const int n = 1 + static_cast<int>(r.below(4));
  for (int k = 0; k < n; ++k) {
    switch (r.below(8)) {
      case 0:  // flip a bit
        if (!d.empty()) d[r.below(d.size())] ^= static_cast<uint8_t>(1u << r.below(8));
        break;
      case 1:  // set a byte
        if (!d.empty()) d[r.below(d.size())] = static_cast<uint8_t>(r.next());
        break;
      case 2: {  // delete a range
        if (d.empty()) break;
        size_t a = r.below(d.size()), len = 1 + r.below(std::min<size_t>(16, d.size() - a));
        d.erase(d.begin() + a, d.begin() + a + len);
        break;
      }
      case 3: {  // insert random bytes
        size_t a = r.below(d.size() + 1), len = 1 + r.below(8);
        std::vector<uint8_t> b(len);
        for (auto& c : b) c = static_cast<uint8_t>(r.next());
        d.insert(d.begin() + a, b.begin(), b.end());
        break;
      }
      case 4:
      case 5: {  // insert a token
        const char* t = kTokens[r.below(std::size(kTokens))];
        size_t len = std::strlen(t) ? std::strlen(t) : 1;  // "\x00" inserts one NUL
        d.insert(d.begin() + r.below(d.size() + 1), t, t + len);
        break;
      }
      case 6: {  // duplicate a range
        if (d.empty()) break;
        size_t a = r.below(d.size()), len = 1 + r.below(std::min<size_t>(64, d.size() - a));
        std::vector<uint8_t> b(d.begin() + a, d.begin() + a + len);
        d.insert(d.begin() + r.below(d.size() + 1), b.begin(), b.end());
        break;
      }
      case 7: {  // splice in a piece of another seed
        const auto& o = seeds[r.below(seeds.size())];
        if (o.empty()) break;
        size_t a = r.below(o.size()), len = 1 + r.below(std::min<size_t>(256, o.size() - a));
        d.insert(d.begin() + r.below(d.size() + 1), o.begin() + a, o.begin() + a + len);
        break;
      }
    }
  }
  if (d.size() > max_len) d.resize(max_len);
}

void run(const std::vector<uint8_t>& in, unsigned timeout) {
  g_current = in;
  ::alarm(timeout);
  LLVMFuzzerTestOneInput(g_current.data(), g_current.size());
  ::alarm(0);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  uint64_t seed = 1;
  size_t max_seed = 16384;
  unsigned timeout = 20;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds") seconds = std::atof(val().c_str());
    else if (a == "--seed") seed = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--max-seed-bytes") max_seed = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--timeout") timeout = static_cast<unsigned>(std::atoi(val().c_str()));
    else paths.push_back(a);
  }
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM}) ::signal(s, on_crash);
  g_saved_stderr = ::dup(2);

  std::vector<std::filesystem::path> files;
  for (const auto& p : paths) {
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "fuzz driver: no such seed file or directory: %s\n", p.c_str());
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::vector<uint8_t>> seeds;
  size_t longest = 64;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (d.size() > max_seed) d.resize(max_seed);
    longest = std::max(longest, d.size());
    seeds.push_back(std::move(d));
  }
  for (const auto& s : seeds) run(s, timeout);
  std::fprintf(stderr, "fuzz driver: %zu seed inputs ran\n", seeds.size());
  if (seconds <= 0) return 0;
  if (seeds.empty()) seeds.emplace_back();

  int devnull = ::open("/dev/null", O_WRONLY);
  if (devnull >= 0) ::dup2(devnull, 2);
  g_phase = "mutated";
  Rng r{seed};
  const auto t0 = std::chrono::steady_clock::now();
  const size_t max_len = longest + longest / 2 + 64;
  uint64_t execs = 0;
  std::vector<uint8_t> d;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    for (int k = 0; k < 16; ++k, ++execs) {
      d = seeds[r.below(seeds.size())];
      mutate(d, seeds, r, max_len);
      run(d, timeout);
    }
  }
  ::dup2(g_saved_stderr, 2);
  std::fprintf(stderr, "fuzz driver: %llu mutated inputs in %.0f s, no crash\n", static_cast<unsigned long long>(execs),
               seconds);
  return 0;
}
