// prefopt Python module (`import prefopt`): one bind_* function per library
// area, each in its own file. The module binds the library itself, never the
// CLI; docs/python.md lists the API.
#pragma once
#include <pybind11/pybind11.h>

namespace prefopt::py_bind {

namespace py = pybind11;

void bind_errors(py::module_& m);     // errors.cpp: prefopt.Error, TemplateError, InternalError
void bind_tokenizer(py::module_& m);  // tokenizer.cpp: Tokenizer
void bind_model(py::module_& m);      // model.cpp: load_model, Model.logprobs / generate
void bind_verify(py::module_& m);     // verify.cpp: grade, pass_at_k
void bind_eval_code(py::module_& m);  // eval_code.cpp: eval_code
void bind_train(py::module_& m);      // train.cpp: train

// The CPU set-up the CLI's preinit object does, for this thread (see cpu_setup.cpp).
void ensure_compute_thread_setup();

}  // namespace prefopt::py_bind
