// `import prefopt`: the module definition. The CPU set-up runs first
// (cpu_setup.cpp), then each area binds its functions (bindings.h).
#include "bindings.h"
#include "core/error.h"
#include "core/log.h"

namespace prefopt::py_bind {
void cpu_setup_at_import(py::module_& m);  // cpu_setup.cpp
}

PYBIND11_MODULE(prefopt, m) {
  namespace pb = prefopt::py_bind;
  m.doc() = "prefopt: direct preference learning (DPO, KTO, BCO, ORPO, SimPO, ...) for HF causal LMs, in C++. "
            "The library bound directly (not the CLI); see docs/python.md.";
  m.attr("__version__") = PREFOPT_VERSION;
  pb::bind_errors(m);
  pb::cpu_setup_at_import(m);
  m.def(
      "set_log_level",
      [](const std::string& level) {
        if (level == "quiet") prefopt::set_log_level(prefopt::LogLevel::Quiet);
        else if (level == "info") prefopt::set_log_level(prefopt::LogLevel::Info);
        else if (level == "debug") prefopt::set_log_level(prefopt::LogLevel::Debug);
        else prefopt::fail("set_log_level", "unknown level \"" + level + "\"", "use \"quiet\", \"info\" or \"debug\"");
      },
      pybind11::arg("level"),
      "Progress and info lines on stderr: \"quiet\" (warnings only), \"info\" (the default) or \"debug\".");
  pb::bind_tokenizer(m);
  pb::bind_model(m);
  pb::bind_verify(m);
  pb::bind_eval_code(m);
  pb::bind_train(m);
}
