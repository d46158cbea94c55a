// Linked as an object into every prefopt executable (see cmake/prefopt.cmake
// and src/core/cpu.h): flush-to-zero before any library starts its threads,
// then a check of OpenBLAS's kernel choice once the libraries are loaded.
#include "core/cpu.h"

static void prefopt_preinit(int, char**, char** envp) { prefopt::cpu::preinit(envp); }
__attribute__((section(".preinit_array"), used)) static void (*prefopt_preinit_entry)(int, char**, char**) =
    &prefopt_preinit;

static void prefopt_after_load(int, char** argv, char** envp) {
  prefopt::cpu::after_libraries_loaded(argv, envp);
}
__attribute__((section(".init_array"), used)) static void (*prefopt_after_load_entry)(int, char**, char**) =
    &prefopt_after_load;
