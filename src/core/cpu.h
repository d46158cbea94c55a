// prefopt core: CPU set-up for fast, predictable numerics.
//
// OpenBLAS reads OPENBLAS_CORETYPE when the library is *loaded*, so setting it
// in main() is too late. Every prefopt executable links the `prefopt_preinit`
// object (src/core/preinit.cpp):
//   * its .preinit_array entry runs before any shared library constructor and
//     sets flush-to-zero / denormals-are-zero on the main thread, which every
//     thread created later (OpenBLAS's own pool, OpenMP's) inherits;
//   * its constructor runs after the libraries are loaded, asks OpenBLAS which
//     kernels it picked, and if that is weaker than what the CPU and OS
//     support (Debian's 0.3.21 says "Prescott" on some AVX-512 Xeons: 3x
//     slower sgemm), re-executes the program once with OPENBLAS_CORETYPE set to
//     SkylakeX (AVX-512 F/BW/DQ/VL/CD) or Haswell (AVX2+FMA). A user's own
//     OPENBLAS_CORETYPE is always respected. Only kernels the CPU has are named.
#pragma once
#include <string>

namespace prefopt::cpu {

// The kernel family a re-exec forced ("" = OpenBLAS's own choice was kept).
const char* chosen_coretype();
// Whether the user had set OPENBLAS_CORETYPE themselves.
bool user_set_coretype();
// Called by the preinit object (see above).
void preinit(char** envp);
void after_libraries_loaded(char** argv, char** envp);
// For embedders without the preinit object: call first thing in main().
void ensure_cpu_setup_or_reexec(char** argv);
// The parts of after_libraries_loaded for a process that cannot re-execute
// itself (the Python module): glibc keeps large blocks in the heap (unless the
// environment sets malloc tunables or PREFOPT_MALLOC_DEFAULT) ...
void keep_large_allocations(char** envp);
// ... and the kernel family a re-exec would force: what the CPU and OS support
// when OpenBLAS picked weaker kernels, else "" (also "" when not OpenBLAS).
const char* blas_coretype_upgrade();

int num_cores();

// What OpenBLAS reports about itself (empty if not OpenBLAS).
std::string blas_core_name();
std::string blas_config();
int blas_num_threads();
void set_blas_num_threads(int n);
// Stops OpenBLAS's thread pool and starts it again from the calling thread, so
// its threads inherit this thread's flush-to-zero mode (threads copy MXCSR
// from their creator): for a process where OpenBLAS started before
// set_flush_denormals(). false when the library is not OpenBLAS (pthreads).
bool restart_blas_threads();
bool flush_denormals_enabled();
void set_flush_denormals();

// A memory field of this process's /proc/self/status ("VmHWM", "VmRSS") in MB; -1 when absent.
double status_mb(const char* key);

}  // namespace prefopt::cpu
