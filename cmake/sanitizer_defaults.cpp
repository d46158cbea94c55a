// Linked into every executable (with the preinit object) when the project is
// built with -DPREFOPT_SANITIZE=...: the sanitizers' defaults for prefopt.
// Leaks inside the uninstrumented libraries (libtorch and its OpenMP / BLAS /
// Python dependencies keep allocations alive until exit) are suppressed by
// library; a leak in prefopt's own code is still reported. The environment
// (ASAN_OPTIONS, LSAN_OPTIONS, UBSAN_OPTIONS) overrides these.
extern "C" {
const char* __asan_default_options() { return "strict_string_checks=1:detect_stack_use_after_return=0"; }
const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
const char* __lsan_default_suppressions() {
  return "leak:libtorch_cpu.so\n"
         "leak:libtorch.so\n"
         "leak:libc10.so\n"
         "leak:libgomp.so\n"
         "leak:libopenblas\n"
         "leak:libpython3\n"
         "leak:libprotobuf.so\n";
}
}
