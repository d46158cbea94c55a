// prefopt.grade and prefopt.pass_at_k: the graders and the unbiased pass@k
// estimator of src/verify (the calls of `prefopt grade` and `prefopt passk`).
#include <algorithm>
#include <cctype>

#include "bindings.h"
#include "convert.h"
#include "core/error.h"
#include "verify/math_grader.h"
#include "verify/passk.h"

namespace prefopt::py_bind {

namespace {

GradeResult grade_one(std::string kind, const std::string& prediction, py::handle answer) {
  std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return std::tolower(c); });
  // The gold answer: a str, or a number as its JSON text (as `prefopt grade` reads a numeric "answer").
  std::string gold;
  if (py::isinstance<py::str>(answer)) gold = answer.cast<std::string>();
  else if ((py::isinstance<py::int_>(answer) || py::isinstance<py::float_>(answer)) && !py::isinstance<py::bool_>(answer))
    gold = to_json(answer, "grade(answer)").dump();
  else
    fail("grade(answer)", "expected a str or a number", "the gold answer, e.g. \"#### 18\", \"18\" or \"\\\\frac{1}{2}\"");
  if (kind == "gsm8k") return grade_gsm8k(prediction, gold);
  if (kind == "math") return grade_math(prediction, gold);
  fail("grade(kind)", "unknown kind \"" + kind + "\"", "use \"gsm8k\" (#### N / last number) or \"math\" (last \\boxed{})");
}

}  // namespace

void bind_verify(py::module_& m) {
  m.def(
      "grade",
      [](const std::string& kind, const std::string& prediction, py::object answer, bool details) -> py::object {
        GradeResult g = grade_one(kind, prediction, answer);
        if (!details) return py::str(to_string(g.grade));
        py::dict d;
        d["verdict"] = to_string(g.grade);
        d["extracted"] = from_json(nlohmann::json(g.extracted));
        d["gold_normalized"] = from_json(nlohmann::json(g.gold_normalized));
        return std::move(d);
      },
      py::arg("kind"), py::arg("prediction"), py::arg("answer"), py::arg("details") = false,
      R"(Grade a model response against the gold answer: "CORRECT", "INCORRECT" or "UNGRADABLE".
kind: "gsm8k" (the answer after "#### ", else the last number) or "math" (the last \boxed{},
LaTeX-aware equivalence). details=True returns {"verdict", "extracted", "gold_normalized"}.
Rules: docs/graders.md.)");
  m.def(
      "pass_at_k", [](int64_t n, int64_t c, int64_t k) { return pass_at_k(n, c, k); }, py::arg("n"), py::arg("c"),
      py::arg("k"),
      "Unbiased pass@k = 1 - C(n-c, k) / C(n, k) for n samples of which c are correct (Chen et al. 2021).");
}

}  // namespace prefopt::py_bind
