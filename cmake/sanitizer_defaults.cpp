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
}
