#include "core/cpu.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>
#include <xmmintrin.h>
#include <pmmintrin.h>

#include <cstdlib>
#include <fstream>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace prefopt::cpu {

static const char* g_reexec_core = "";  // what a re-exec forced ("" = none)
static bool g_user_set = false;

// Kernel families in increasing capability; the rank of what the CPU and OS support.
static int core_rank(const std::string& c) {
  if (c == "SkylakeX" || c == "Cooperlake" || c == "SapphireRapids") return 3;
  if (c == "Haswell" || c == "Zen") return 2;
  return 1;
}

static const char* best_supported_core() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the register state.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void set_flush_denormals() {
#if defined(__SSE__)
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
}

bool flush_denormals_enabled() {
#if defined(__SSE__)
  return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON;
#else
  return false;
#endif
}

static bool env_has(char** envp, const char* key) {
  size_t n = std::strlen(key);
  for (char** e = envp; e && *e; ++e)
    if (std::strncmp(*e, key, n) == 0 && (*e)[n] == '=') return true;
  return false;
}
static const char* env_get(char** envp, const char* key) {
  size_t n = std::strlen(key);
  for (char** e = envp; e && *e; ++e)
    if (std::strncmp(*e, key, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return nullptr;
}

void preinit(char** envp) {
  // Runs before libc and every shared library are initialised: touch no libc
  // state, only this thread's MXCSR, which threads created later inherit.
  set_flush_denormals();
  (void)envp;
}

// glibc serves every allocation above its mmap threshold (at most 32 MB
// dynamically) with a fresh mmap and returns it on free, so each [rows, vocab]
// logits block of the chunked log-prob head, allocated and freed per chunk,
// page-faults all its memory again: measured 3.3x slower DPO steps (a tiny
// model over Qwen2's 151k vocabulary, 123 vs 433 tokens/s). Keep large blocks
// in the heap and do not trim it, as PyTorch's caching allocators do; the
// process keeps its peak memory until exit. A user's own malloc settings win.
void keep_large_allocations(char** envp) {
  if (env_has(envp, "GLIBC_TUNABLES") || env_has(envp, "MALLOC_MMAP_THRESHOLD_") ||
      env_has(envp, "MALLOC_TRIM_THRESHOLD_") || env_has(envp, "PREFOPT_MALLOC_DEFAULT"))
    return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
}

void after_libraries_loaded(char** argv, char** envp) {
  set_flush_denormals();
  keep_large_allocations(envp);
  const char* forced = env_get(envp, "PREFOPT_REEXEC_CORETYPE");
  if (forced) {
    g_reexec_core = forced;
    return;  // we are the re-exec'd process: never loop
  }
  // PREFOPT_BLAS_RECHECK=1 asks to upgrade even a user-set OPENBLAS_CORETYPE
  // when it is weaker than what the CPU supports (also how the test drives
  // the re-exec path on a machine that OpenBLAS detects correctly).
  const bool recheck = env_has(envp, "PREFOPT_BLAS_RECHECK");
  if (env_has(envp, "OPENBLAS_CORETYPE") && !recheck) {
    g_user_set = true;
    return;
  }
  const char* best = blas_coretype_upgrade();
  if (!*best) return;
  // OpenBLAS mis-detected this CPU: restart with the kernels it really supports.
  std::vector<std::string> env;
  for (char** e = envp; e && *e; ++e)
    if (std::strncmp(*e, "OPENBLAS_CORETYPE=", 18) != 0) env.emplace_back(*e);
  env.push_back(std::string("OPENBLAS_CORETYPE=") + best);
  env.push_back(std::string("PREFOPT_REEXEC_CORETYPE=") + best);
  std::vector<char*> ep;
  for (auto& s : env) ep.push_back(s.data());
  ep.push_back(nullptr);
  execve("/proc/self/exe", argv, ep.data());  // returns only on failure: carry on
}

const char* blas_coretype_upgrade() {
  std::string cur = blas_core_name();
  if (cur.empty()) return "";  // not OpenBLAS
  const char* best = best_supported_core();
  if (!*best || core_rank(cur) >= core_rank(best)) return "";
  return best;
}

const char* chosen_coretype() { return g_reexec_core; }
bool user_set_coretype() { return g_user_set; }

void ensure_cpu_setup_or_reexec(char** argv) { after_libraries_loaded(argv, environ); }

int num_cores() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : static_cast<int>(n);
}

// OpenBLAS entry points, looked up at run time so any BLAS can be linked.
// A library loaded with RTLD_LOCAL (a Python extension module and its
// dependencies) is not in the global scope: then ask OpenBLAS's own soname.
template <typename F>
static F blas_sym(const char* name) {
  void* f = dlsym(RTLD_DEFAULT, name);
  for (const char* lib : {"libopenblas.so.0", "libblas.so.3"}) {
    if (f) break;
    if (void* h = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD)) {  // only if already loaded
      f = dlsym(h, name);
      dlclose(h);
    }
  }
  return reinterpret_cast<F>(f);
}

std::string blas_core_name() {
  auto f = blas_sym<char* (*)()>("openblas_get_corename");
  return f ? std::string(f()) : std::string();
}
std::string blas_config() {
  auto f = blas_sym<char* (*)()>("openblas_get_config");
  return f ? std::string(f()) : std::string();
}
int blas_num_threads() {
  auto f = blas_sym<int (*)()>("openblas_get_num_threads");
  return f ? f() : -1;
}
void set_blas_num_threads(int n) {
  auto f = blas_sym<void (*)(int)>("openblas_set_num_threads");
  if (f) f(n);
}
bool restart_blas_threads() {
  auto shutdown = blas_sym<int (*)()>("blas_thread_shutdown_");
  auto init = blas_sym<int (*)()>("blas_thread_init");
  if (!shutdown || !init) return false;
  shutdown();
  init();
  return true;
}

double status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0 && line[n] == ':') return std::atof(line.c_str() + n + 1) / 1024.0;
  return -1;
}

}  // namespace prefopt::cpu
