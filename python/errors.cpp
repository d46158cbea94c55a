// prefopt's errors as Python exceptions, with the library's messages unchanged:
//   prefopt::Error (bad input; the CLI's exit 2)   -> prefopt.Error (a ValueError)
//   prefopt::jinja::RenderError (a template raise) -> prefopt.TemplateError (a prefopt.Error)
//   prefopt::InternalError (a bug; the CLI's exit 3) -> prefopt.InternalError (a RuntimeError)
// Any other C++ exception keeps pybind11's mapping (std::exception -> RuntimeError).
#include "bindings.h"
#include "core/error.h"
#include "tokenizer/jinja.h"

namespace prefopt::py_bind {

void bind_errors(py::module_& m) {
  // Never released: the translator below may run until the interpreter ends.
  static PyObject* error = PyErr_NewExceptionWithDoc(
      "prefopt.Error", "Bad input (prefopt's user error, exit 2 from the CLI); the message names the place and a HINT.",
      PyExc_ValueError, nullptr);
  static PyObject* template_error = PyErr_NewExceptionWithDoc(
      "prefopt.TemplateError", "A chat template rejected a conversation (its raise_exception or an undefined value).",
      error, nullptr);
  static PyObject* internal_error = PyErr_NewExceptionWithDoc(
      "prefopt.InternalError", "A broken internal invariant: a bug in prefopt (exit 3 from the CLI).",
      PyExc_RuntimeError, nullptr);
  m.attr("Error") = py::handle(error);
  m.attr("UserError") = py::handle(error);  // the CLI's name for the class
  m.attr("TemplateError") = py::handle(template_error);
  m.attr("InternalError") = py::handle(internal_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const jinja::RenderError& e) {
      PyErr_SetString(template_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(error, e.what());
    } catch (const InternalError& e) {
      PyErr_SetString(internal_error, e.what());
    }
  });
}

}  // namespace prefopt::py_bind
