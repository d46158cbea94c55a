// prefopt verify: DSTC pairs (Liu et al., "DSTC: Direct Preference Learning
// with Only Self-Generated Tests and Code to Improve Code LMs", arXiv
// 2411.13611).
//
// For one problem the model samples codes c_1..c_N and tests t_1..t_M; each
// code is run against each test (in the sandbox), giving a binary matrix
// M[i][j] = 1 when code i passes test j. Minimax selection:
//   chosen code    c+ = argmax_i  sum_j M[i][j]              (passes the most tests)
//   chosen test    t+ = argmin_{j : M[c+][j] = 1} sum_i M[i][j]
//                       (the hardest test c+ passes: passing it means most)
//   rejected code  c- = argmin_i  sum_j M[i][j]              (passes the fewest)
//   rejected test  t- = argmax_{j : M[c-][j] = 0} sum_i M[i][j]
//                       (the test c- fails that the most codes pass: the one
//                        most likely to be right)
// Ties go to the lowest index. No pair when c+ passes nothing, c- fails
// nothing, or c+ does not pass strictly more tests than c-.
// Responses concatenate the selected code and test (code first by default;
// DstcOrder::TEST_FIRST puts the test first).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace prefopt {

// Rows are codes, columns tests.
struct ExecMatrix {
  size_t codes = 0, tests = 0;
  std::vector<uint8_t> pass;  // codes * tests, row-major
  bool at(size_t code, size_t test) const { return pass[code * tests + test] != 0; }
  size_t code_passes(size_t code) const;  // row sum
  size_t test_passes(size_t test) const;  // column sum
};

struct DstcChoice {
  size_t chosen_code = 0, chosen_test = 0, rejected_code = 0, rejected_test = 0;
};

std::optional<DstcChoice> dstc_select(const ExecMatrix& m);

enum class DstcOrder { CODE_FIRST, TEST_FIRST };
// The two parts joined by a blank line, each ending in one newline.
std::string dstc_response(const std::string& code, const std::string& test, DstcOrder order = DstcOrder::CODE_FIRST);

// Runs every (code, test) pair with `run` and returns the matrix. `run` gets
// all N*M programs at once (code i, test j at index i*M + j) so that it can
// use a process pool; it returns true where the run PASSED. Infrastructure
// failures must not be reported as a fail: `run` throws instead.
using CodeTestRunner = std::function<std::vector<bool>(const std::vector<std::pair<std::string, std::string>>&)>;
ExecMatrix dstc_execute(const std::vector<std::string>& codes, const std::vector<std::string>& tests,
                        const CodeTestRunner& run);

}  // namespace prefopt
