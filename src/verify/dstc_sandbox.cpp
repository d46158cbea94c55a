// DSTC's execution matrix through the sandbox pool.
#include "verify/dstc_sandbox.h"

#include <memory>

#include "core/error.h"

namespace prefopt {

CodeTestRunner sandbox_code_test_runner(int workers, const Limits& limits) {
  auto pool = std::make_shared<SandboxPool>(workers, limits);
  return [pool](const std::vector<std::pair<std::string, std::string>>& programs) {
    std::vector<TestJob> jobs;
    jobs.reserve(programs.size());
    for (auto& [code, test] : programs) jobs.push_back({code, test});
    auto results = pool->run_tests_all(jobs);
    std::vector<bool> pass(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].verdict == Verdict::SANDBOX_ERROR)
        fail("DSTC execution", fmt::format("sandbox error on program {} (index code * tests + test): {}", i, results[i].detail),
             "the sandbox could not run the program (infrastructure, not the model); see `prefopt sandbox-info` "
             "and docs/sandbox.md");
      pass[i] = results[i].verdict == Verdict::PASSED;
    }
    return pass;
  };
}

}  // namespace prefopt
