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

int num_cores();

// What OpenBLAS reports about itself (empty if not OpenBLAS).
std::string blas_core_name();
std::string blas_config();
int blas_num_threads();
void set_blas_num_threads(int n);
bool flush_denormals_enabled();
void set_flush_denormals();

}  // namespace prefopt::cpu
