// Linked into every executable (with the preinit object) when the project is
// built with -DPREFOPT_SANITIZE=...: the sanitizers' defaults for prefopt.
// Leaks inside the uninstrumented libraries are suppressed by library; a leak
// in prefopt's own code is still reported (LSan matches a suppression against
// every frame of the allocation's stack, and prefopt's allocations are not made
// from inside these libraries). The environment (ASAN_OPTIONS, LSAN_OPTIONS,
// UBSAN_OPTIONS) overrides these.
extern "C" {
const char* __asan_default_options() { return "strict_string_checks=1:detect_stack_use_after_return=0"; }
const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
const char* __lsan_default_suppressions() {
  // libtorch_cpu / libtorch / libc10: the operator registry, dispatcher tables
  // and per-thread caches are allocated once at load and deliberately never
  // freed (no destruction-order problems at exit).
  return "leak:libtorch_cpu.so\n"
         "leak:libtorch.so\n"
         "leak:libc10.so\n"
         // libgomp: the OpenMP thread pool's per-thread state lives until exit.
         "leak:libgomp.so\n"
         // OpenBLAS: its threads' work buffers, freed only by blas_shutdown, which nothing calls.
         "leak:libopenblas\n"
         // protobuf (a libtorch dependency): the generated descriptor pool, freed
         // only by ShutdownProtobufLibrary.
         "leak:libprotobuf.so\n";
}
}
