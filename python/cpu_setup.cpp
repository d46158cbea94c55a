// What the CLI's preinit object (src/core/preinit.cpp, core/cpu.h) does, done
// at `import prefopt`, as far as a module can:
//   * flush-to-zero / denormals-are-zero on the importing thread, and
//     OpenBLAS's thread pool restarted from it so its threads inherit the mode
//     (OpenBLAS started its threads when it was loaded, before this code ran);
//     every long call sets the mode on its calling thread too;
//   * glibc keeps large blocks in the heap (cpu::keep_large_allocations, with
//     the CLI's opt-outs);
//   * the OpenBLAS kernel check: the CLI re-executes itself with
//     OPENBLAS_CORETYPE set; a module cannot re-execute the interpreter, so it
//     warns (RuntimeWarning) with the variable to set before starting Python.
// These are process-wide, as in the CLI: flush-to-zero also applies to other
// float code on the same threads (numpy's BLAS included).
#include <pybind11/stl.h>

#include <cstdlib>

#include "bindings.h"
#include "core/cpu.h"
#include "core/log.h"

extern char** environ;

namespace prefopt::py_bind {

namespace {
bool g_blas_restarted = false;
std::string g_coretype_upgrade;
}  // namespace

void ensure_compute_thread_setup() { cpu::set_flush_denormals(); }

void cpu_setup_at_import(py::module_& m) {
  cpu::set_flush_denormals();
  g_blas_restarted = cpu::restart_blas_threads();
  cpu::keep_large_allocations(environ);
  if (!std::getenv("OPENBLAS_CORETYPE")) {
    g_coretype_upgrade = cpu::blas_coretype_upgrade();
    if (!g_coretype_upgrade.empty()) {
      std::string msg = fmt::format(
          "prefopt: OpenBLAS chose {} kernels, but this CPU supports {}: start Python with OPENBLAS_CORETYPE={} "
          "for faster matrix products (the prefopt CLI re-executes itself with it; a module cannot)",
          cpu::blas_core_name(), g_coretype_upgrade, g_coretype_upgrade);
      if (PyErr_WarnEx(PyExc_RuntimeWarning, msg.c_str(), 1) < 0) throw py::error_already_set();
    }
  }
  m.def(
      "cpu_info",
      [] {
        py::dict d;
        d["blas_core"] = cpu::blas_core_name();
        d["blas_config"] = cpu::blas_config();
        d["blas_threads"] = cpu::blas_num_threads();
        d["blas_threads_restarted"] = g_blas_restarted;
        d["flush_denormals"] = cpu::flush_denormals_enabled();  // on the calling thread
        d["coretype_upgrade"] = g_coretype_upgrade;
        d["cores"] = cpu::num_cores();
        return d;
      },
      "What `import prefopt` set up: OpenBLAS's kernels and threads, whether its pool was restarted "
      "with flush-to-zero, flush-to-zero on the calling thread, and the OPENBLAS_CORETYPE it recommends (\"\" = none).");
}

}  // namespace prefopt::py_bind
