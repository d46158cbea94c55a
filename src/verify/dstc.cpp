// DSTC minimax selection over a code x test execution matrix (see dstc.h).
#include "verify/dstc.h"

#include "core/error.h"

namespace prefopt {

size_t ExecMatrix::code_passes(size_t code) const {
  size_t s = 0;
  for (size_t j = 0; j < tests; ++j) s += at(code, j);
  return s;
}

size_t ExecMatrix::test_passes(size_t test) const {
  size_t s = 0;
  for (size_t i = 0; i < codes; ++i) s += at(i, test);
  return s;
}

std::optional<DstcChoice> dstc_select(const ExecMatrix& m) {
  PREFOPT_CHECK(m.pass.size() == m.codes * m.tests, "DSTC: matrix has {} cells, expected {} x {}", m.pass.size(),
                m.codes, m.tests);
  if (m.codes < 2 || m.tests == 0) return std::nullopt;
  DstcChoice c;
  size_t best = 0, worst = 0;
  for (size_t i = 0; i < m.codes; ++i) {
    size_t p = m.code_passes(i);
    if (p > m.code_passes(c.chosen_code)) c.chosen_code = i;
    if (p < m.code_passes(c.rejected_code)) c.rejected_code = i;
  }
  best = m.code_passes(c.chosen_code);
  worst = m.code_passes(c.rejected_code);
  if (best == 0 || worst == m.tests || best <= worst) return std::nullopt;
  // chosen test: among tests c+ passes, the one the fewest codes pass
  bool found = false;
  for (size_t j = 0; j < m.tests; ++j) {
    if (!m.at(c.chosen_code, j)) continue;
    if (!found || m.test_passes(j) < m.test_passes(c.chosen_test)) c.chosen_test = j;
    found = true;
  }
  // rejected test: among tests c- fails, the one the most codes pass
  found = false;
  for (size_t j = 0; j < m.tests; ++j) {
    if (m.at(c.rejected_code, j)) continue;
    if (!found || m.test_passes(j) > m.test_passes(c.rejected_test)) c.rejected_test = j;
    found = true;
  }
  return c;
}

static std::string with_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s + "\n";
}

std::string dstc_response(const std::string& code, const std::string& test, DstcOrder order) {
  switch (order) {
    case DstcOrder::CODE_FIRST: return with_newline(code) + "\n" + with_newline(test);
    case DstcOrder::TEST_FIRST: return with_newline(test) + "\n" + with_newline(code);
  }
  return "";
}

ExecMatrix dstc_execute(const std::vector<std::string>& codes, const std::vector<std::string>& tests,
                        const CodeTestRunner& run) {
  std::vector<std::pair<std::string, std::string>> programs;
  programs.reserve(codes.size() * tests.size());
  for (auto& c : codes)
    for (auto& t : tests) programs.emplace_back(c, t);
  auto res = run(programs);
  PREFOPT_CHECK(res.size() == programs.size(), "DSTC: runner returned {} results for {} programs", res.size(),
                programs.size());
  ExecMatrix m;
  m.codes = codes.size();
  m.tests = tests.size();
  m.pass.resize(res.size());
  for (size_t k = 0; k < res.size(); ++k) m.pass[k] = res[k] ? 1 : 0;
  return m;
}

}  // namespace prefopt
