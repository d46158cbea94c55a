// The verdict rule on hand-built facts, verdict names, the seccomp filter and
// the per-run secret (no process is started here).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <set>
#include <sstream>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_impl.h"

using namespace prefopt;
using sandbox_detail::RunFacts;

static RunResult decide(const RunFacts& f) {
  RunResult r;
  sandbox_detail::decide_verdict(f, r);
  return r;
}
static RunFacts exited(int code, bool secret) {
  RunFacts f;
  f.have_status = true;
  f.wait_status = (code & 0xff) << 8;  // W_EXITCODE(code, 0)
  f.secret_ok = secret;
  f.cpu_limit_s = 10;
  return f;
}
static RunFacts signaled(int sig, int64_t cpu_ms = 0) {
  RunFacts f;
  f.have_status = true;
  f.wait_status = sig;  // W_EXITCODE(0, sig)
  f.cpu_ms = cpu_ms;
  f.cpu_limit_s = 2;
  return f;
}

TEST(SandboxVerdict, NamesRoundTrip) {
  const Verdict all[] = {Verdict::PASSED,       Verdict::FAILED,  Verdict::TIMEOUT,      Verdict::MEMORY_LIMIT,
                         Verdict::OUTPUT_LIMIT, Verdict::CRASHED, Verdict::SANDBOX_ERROR};
  std::set<std::string> names;
  for (Verdict v : all) {
    names.insert(to_string(v));
    EXPECT_EQ(parse_verdict(to_string(v)), v);
  }
  EXPECT_EQ(names.size(), 7u);
  EXPECT_EQ(std::string(to_string(Verdict::MEMORY_LIMIT)), "MEMORY_LIMIT");
  EXPECT_FALSE(parse_verdict("passed").has_value());
  EXPECT_FALSE(counts_against_model(Verdict::SANDBOX_ERROR));
  EXPECT_TRUE(counts_against_model(Verdict::TIMEOUT));
}

TEST(SandboxVerdict, PassNeedsExitZeroAndSecret) {
  EXPECT_EQ(decide(exited(0, true)).verdict, Verdict::PASSED);
  EXPECT_EQ(decide(exited(0, false)).verdict, Verdict::FAILED);  // exit(0) before the tests
  EXPECT_EQ(decide(exited(1, true)).verdict, Verdict::FAILED);   // a thread changed the exit code
  EXPECT_EQ(decide(exited(3, false)).exit_code, 3);
  RunFacts f = exited(1, false);
  f.exception = "AssertionError";
  RunResult r = decide(f);
  EXPECT_EQ(r.verdict, Verdict::FAILED);
  EXPECT_NE(r.detail.find("AssertionError"), std::string::npos);
}

TEST(SandboxVerdict, LimitsAndCrashes) {
  RunFacts f = exited(1, false);
  f.exception = "MemoryError";
  EXPECT_EQ(decide(f).verdict, Verdict::MEMORY_LIMIT);
  f = signaled(SIGKILL);
  f.oom_killed = true;
  EXPECT_EQ(decide(f).verdict, Verdict::MEMORY_LIMIT);
  EXPECT_EQ(decide(signaled(SIGSEGV)).verdict, Verdict::CRASHED);
  EXPECT_EQ(decide(signaled(SIGSEGV)).signal, SIGSEGV);
  EXPECT_EQ(decide(signaled(SIGABRT)).verdict, Verdict::CRASHED);
  EXPECT_EQ(decide(signaled(SIGXCPU)).verdict, Verdict::TIMEOUT);
  EXPECT_EQ(decide(signaled(SIGKILL, 2100)).verdict, Verdict::TIMEOUT);  // hard CPU limit
  EXPECT_EQ(decide(signaled(SIGKILL, 100)).verdict, Verdict::CRASHED);
  // Killed by the supervisor: the reason wins over whatever status there is.
  f = exited(0, true);
  f.killed_timeout = true;
  EXPECT_EQ(decide(f).verdict, Verdict::TIMEOUT);
  f = RunFacts{};
  f.killed_output = true;
  EXPECT_EQ(decide(f).verdict, Verdict::OUTPUT_LIMIT);
  // Infrastructure: never the model's fault.
  f = RunFacts{};
  f.zygote_lost = true;
  EXPECT_EQ(decide(f).verdict, Verdict::SANDBOX_ERROR);
  f = exited(126, false);
  f.setup_failed = true;
  EXPECT_EQ(decide(f).verdict, Verdict::SANDBOX_ERROR);
}

// run_tests: the harness's own status decides; the candidate's status only
// explains why the harness lost it.
TEST(SandboxVerdict, HarnessDecidesTheCandidateExplains) {
  // A candidate that exited 0 (or was never reaped) does not make a pass.
  RunFacts f = exited(1, false);
  f.candidate_lost = "the candidate's process ended";
  f.cand_have_status = true;
  f.cand_wait_status = 0;
  RunResult r = decide(f);
  EXPECT_EQ(r.verdict, Verdict::FAILED);
  EXPECT_NE(r.detail.find("lost"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("exit code 0"), std::string::npos) << r.detail;
  // The candidate died of the CPU limit or a crash: TIMEOUT / CRASHED, named.
  f.cand_wait_status = SIGXCPU;
  EXPECT_EQ(decide(f).verdict, Verdict::TIMEOUT);
  f.cand_wait_status = SIGKILL;
  f.cand_cpu_ms = 9990;  // at the 10 s limit
  EXPECT_EQ(decide(f).verdict, Verdict::TIMEOUT);
  f.cand_cpu_ms = 10;
  r = decide(f);
  EXPECT_EQ(r.verdict, Verdict::CRASHED);
  EXPECT_NE(r.detail.find("candidate"), std::string::npos) << r.detail;
  f.cand_wait_status = SIGSEGV;
  EXPECT_EQ(decide(f).verdict, Verdict::CRASHED);
  // ... or of the memory cgroup: MEMORY_LIMIT.
  f.oom_killed = true;
  EXPECT_EQ(decide(f).verdict, Verdict::MEMORY_LIMIT);
  // A non-plain answer is FAILED with the reason, even if the tests swallowed it.
  f = exited(1, false);
  f.rejected = "add() returned something that is not plain data: a A is not plain data";
  r = decide(f);
  EXPECT_EQ(r.verdict, Verdict::FAILED);
  EXPECT_NE(r.detail.find("not plain data"), std::string::npos) << r.detail;
  // Only the harness's secret and exit 0 pass, whatever the candidate did.
  f = exited(0, true);
  f.cand_have_status = true;
  f.cand_wait_status = SIGKILL;  // killed by the zygote after the tests ended
  EXPECT_EQ(decide(f).verdict, Verdict::PASSED);
}

TEST(SandboxSeccomp, FilterIsBuilt) {
  const std::string& bpf = sandbox_detail::seccomp_bpf();
  ASSERT_FALSE(bpf.empty());
  EXPECT_EQ(bpf.size() % 8, 0u);  // struct sock_filter is 8 bytes
  EXPECT_GT(bpf.size() / 8, 50u);  // one check per denied syscall at least
}

TEST(SandboxSecret, RandomPerRun) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string s = sandbox_detail::random_hex(16);
    EXPECT_EQ(s.size(), 32u);
    EXPECT_EQ(s.find_first_not_of("0123456789abcdef"), std::string::npos);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(SandboxIsolation, CgroupHierarchyFromMounts) {
  using sandbox_detail::cgroup_hierarchy_from;
  const std::string v1 =
      "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
      "cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n";
  const std::string v2 = "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
  const std::string hybrid = v1 + "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
  EXPECT_EQ(cgroup_hierarchy_from(v1).rfind("v1 ", 0), 0u) << cgroup_hierarchy_from(v1);
  EXPECT_EQ(cgroup_hierarchy_from(v2).rfind("v2 (unified hierarchy at /sys/fs/cgroup", 0), 0u);
  EXPECT_EQ(cgroup_hierarchy_from(hybrid), "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)");
  EXPECT_EQ(cgroup_hierarchy_from("proc /proc proc rw 0 0\n"), "none mounted");
  // A v1 controller mounted somewhere else is not the system's hierarchy.
  EXPECT_EQ(cgroup_hierarchy_from("cgroup /mnt/x cgroup rw,pids 0 0\n"), "none mounted");
  // This machine: the report says what /proc/self/mounts says.
  std::ifstream in("/proc/self/mounts");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string here = cgroup_hierarchy_from(ss.str());
  EXPECT_NE(isolation_report().find("cgroup hierarchy:           " + here), std::string::npos) << isolation_report();
  if (ss.str().find(" /sys/fs/cgroup cgroup2 ") != std::string::npos) {
    EXPECT_EQ(here.rfind("v2", 0), 0u) << here;
  }
}

TEST(SandboxIsolation, ReportNamesEveryMechanism) {
  std::string rep = isolation_report();
  for (const char* k : {"user namespace", "pid namespace", "net namespace", "mount namespace", "ipc namespace",
                        "uts namespace", "seccomp", "cgroup v1 pids", "cgroup v1 memory", "uid 65534", "bubblewrap"})
    EXPECT_NE(rep.find(k), std::string::npos) << k;
  std::string lvl = isolation_level();
  EXPECT_TRUE(lvl.rfind("full", 0) == 0 || lvl.rfind("partial", 0) == 0 || lvl.rfind("degraded", 0) == 0) << lvl;
}
