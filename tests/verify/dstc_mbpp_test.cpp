// DSTC end to end on real MBPP problems: given codes (the reference solution
// and deliberately wrong ones) x given tests (the reference asserts and a
// deliberately wrong one) -> execution matrix -> minimax pair.
//
// The runner is the sandbox pool (sandbox_code_test_runner) when the sandbox
// floor is built and its probe run passes. Until then it is a plain
// `python3 -I` subprocess per program (run_plain_python), which is acceptable only because every
// program below is fixed in this file (MBPP references and our own variants),
// never model output. The test prints which runner it used.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/jsonl.h"
#include "verify/dstc.h"
#ifdef PREFOPT_HAVE_SANDBOX
#include "verify/dstc_sandbox.h"
#endif

using namespace prefopt;

static std::vector<bool> run_plain_python(const std::vector<std::pair<std::string, std::string>>& progs) {
  std::vector<bool> out;
  const std::string dir = "/tmp/prefopt_dstc_" + std::to_string(getpid());
  make_dirs(dir);
  for (size_t i = 0; i < progs.size(); ++i) {
    const std::string f = dir + "/p" + std::to_string(i) + ".py";
    atomic_write(f, progs[i].first + "\n" + progs[i].second + "\n");
    int rc = std::system(("timeout 20 python3 -I " + f + " >/dev/null 2>&1").c_str());
    out.push_back(rc == 0);
  }
  remove_all(dir);
  return out;
}

// The sandbox when it runs a trivial passing test, else plain python3.
static CodeTestRunner pick_runner() {
#ifdef PREFOPT_HAVE_SANDBOX
  if (run_tests("x = 1", "assert x == 1").verdict == Verdict::PASSED) {
    std::printf("runner: sandbox (%s)\n", isolation_level().c_str());
    return sandbox_code_test_runner(2);
  }
  std::printf("runner: plain python3 (the sandbox is built but its probe did not pass)\n");
#else
  std::printf("runner: plain python3 (no sandbox floor in this build)\n");
#endif
  return run_plain_python;
}

static json mbpp_task(int id) {
  for (auto& r : read_jsonl(std::string(PREFOPT_SHARED_DATA) + "/code/mbpp.jsonl"))
    if (r["task_id"] == id) return r;
  ADD_FAILURE() << "MBPP task " << id << " not found";
  return {};
}

TEST(DstcMbpp, IsNotPrime) {
  if (std::system("python3 -c 'pass' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  json t = mbpp_task(3);
  std::vector<std::string> codes = {
      t["code"],                                              // c0 reference
      "def is_not_prime(n):\n    return False\n",            // c1 always False
      "import math\ndef is_not_prime(n):\n    for i in range(2, int(math.sqrt(n))):\n"
      "        if n % i == 0:\n            return True\n    return False\n",  // c2 misses the root
      "def is_not_prime(n) return n > 1\n",                  // c3 syntax error
  };
  std::vector<std::string> tests;
  for (auto& a : t["test_list"]) tests.push_back(a);     // t0 (2)==False, t1 (10)==True, t2 (35)==True
  tests.push_back("assert is_not_prime(2) == True");      // t3 wrong test
  auto m = dstc_execute(codes, tests, pick_runner());
  // Hand-derived:      t0 t1 t2 t3
  //   c0 reference      1  1  1  0
  //   c1 always False   1  0  0  0
  //   c2 range(2,5) for 35 misses 5: 1  1  0  0
  //   c3 syntax error   0  0  0  0
  EXPECT_EQ(m.pass, (std::vector<uint8_t>{1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0}));
  auto c = dstc_select(m);
  ASSERT_TRUE(c);
  // c+ = c0 (3 passes); t+ = the test c0 passes that the fewest codes pass:
  // column sums t0 3, t1 2, t2 1 -> t2. c- = c3 (0 passes); t- = the test c3
  // fails that the most codes pass -> t0 (3). The wrong test t3 is never used.
  EXPECT_EQ(c->chosen_code, 0u);
  EXPECT_EQ(c->chosen_test, 2u);
  EXPECT_EQ(c->rejected_code, 3u);
  EXPECT_EQ(c->rejected_test, 0u);
  std::string chosen = dstc_response(codes[c->chosen_code], tests[c->chosen_test]);
  EXPECT_NE(chosen.find("assert is_not_prime(35) == True"), std::string::npos);
  EXPECT_LT(chosen.find("def is_not_prime"), chosen.find("assert"));  // code first
  // The chosen response is itself a passing program; the rejected is not.
  EXPECT_EQ(run_plain_python({{chosen, ""}}), std::vector<bool>{true});
  EXPECT_EQ(run_plain_python({{dstc_response(codes[c->rejected_code], tests[c->rejected_test]), ""}}),
            std::vector<bool>{false});
}

TEST(DstcMbpp, HeapQueueLargest) {
  if (std::system("python3 -c 'pass' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  json t = mbpp_task(4);
  std::vector<std::string> codes = {
      "def heap_queue_largest(nums, n):\n    return sorted(nums)[:n]\n",              // c0 smallest, ascending
      t["code"],                                                                      // c1 reference
      "def heap_queue_largest(nums, n):\n    return sorted(nums, reverse=True)[:3]\n",  // c2 ignores n
  };
  std::vector<std::string> tests;
  for (auto& a : t["test_list"]) tests.push_back(a);  // n = 3, 2, 5
  auto m = dstc_execute(codes, tests, pick_runner());
  //                 t0(n=3) t1(n=2) t2(n=5)
  //   c0               0       0       0
  //   c1               1       1       1
  //   c2               1       0       0
  EXPECT_EQ(m.pass, (std::vector<uint8_t>{0, 0, 0, 1, 1, 1, 1, 0, 0}));
  auto c = dstc_select(m);
  ASSERT_TRUE(c);
  // c+ = c1; column sums 2, 1, 1 -> t+ = t1 (first of the minimum).
  // c- = c0; it fails all, the most passed is t0 (2).
  EXPECT_EQ(c->chosen_code, 1u);
  EXPECT_EQ(c->chosen_test, 1u);
  EXPECT_EQ(c->rejected_code, 0u);
  EXPECT_EQ(c->rejected_test, 0u);
}

#ifdef PREFOPT_HAVE_SANDBOX
// A code written to fool the asserts rather than solve the task: an object
// that equals everything. In one interpreter with the asserts it passes every
// test, the wrong one too; in the sandbox the asserts run in a harness that
// only sees plain data, so its row is all zeros and DSTC never picks it.
TEST(DstcMbpp, CodeThatFoolsTheAssertsPassesNothing) {
  if (std::system("python3 -c 'pass' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  if (run_tests("x = 1", "assert x == 1").verdict != Verdict::PASSED) GTEST_SKIP() << "the sandbox probe did not pass";
  json t = mbpp_task(3);
  const std::string hack =
      "class _Yes:\n    def __eq__(self, o):\n        return True\n    __hash__ = object.__hash__\n"
      "def is_not_prime(n):\n    return _Yes()\n";
  std::vector<std::string> codes = {t["code"], hack};
  std::vector<std::string> tests;
  for (auto& a : t["test_list"]) tests.push_back(a);
  tests.push_back("assert is_not_prime(2) == True");  // a wrong test
  // Control: the hack really fools asserts that share its interpreter.
  EXPECT_EQ(run_plain_python({{hack, tests[0]}, {hack, tests[3]}}), (std::vector<bool>{true, true}));
  auto m = dstc_execute(codes, tests, sandbox_code_test_runner(2));
  EXPECT_EQ(m.pass, (std::vector<uint8_t>{1, 1, 1, 0, 0, 0, 0, 0}));
  auto c = dstc_select(m);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chosen_code, 0u);
  EXPECT_EQ(c->rejected_code, 1u);
}
#endif
