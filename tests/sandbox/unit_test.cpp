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

// /proc/self/mountinfo and /proc/self/cgroup texts of the three layouts
// (this machine's hybrid one among them, copied from it).
const std::string kV1Mounts =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids\n";
const std::string kHybridMounts = kV1Mounts + "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const std::string kV2Mounts =
    "22 1 0:21 / /proc rw - proc proc rw\n"
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
const std::string kV1Cgroup = "8:pids:/\n4:memory:/process_api/4194\n1:cpu:/\n0::/\n";

TEST(SandboxIsolation, CgroupLayoutFromMountinfo) {
  using sandbox_detail::cgroup_hierarchy_from;
  using sandbox_detail::cgroup_layout_from;
  auto v1 = cgroup_layout_from(kV1Mounts, kV1Cgroup);
  EXPECT_EQ(v1.kind, "v1");
  EXPECT_EQ(v1.summary.rfind("v1 ", 0), 0u) << v1.summary;
  EXPECT_EQ(v1.v1_dir("pids"), "/sys/fs/cgroup/pids");
  EXPECT_EQ(v1.v1_dir("memory"), "/sys/fs/cgroup/memory/process_api/4194");
  EXPECT_EQ(v1.v1_dir("cpu"), "/sys/fs/cgroup/cpu");
  EXPECT_EQ(v1.v1_dir("blkio"), "");  // not mounted
  EXPECT_EQ(v1.v2_mount, "");
  auto hy = cgroup_layout_from(kHybridMounts, kV1Cgroup);
  EXPECT_EQ(hy.kind, "hybrid");
  EXPECT_EQ(hy.summary, "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)");
  EXPECT_EQ(hy.v2_mount, "/sys/fs/cgroup/unified");
  EXPECT_EQ(hy.v2_dir, "/sys/fs/cgroup/unified");
  EXPECT_EQ(hy.v1_dir("memory"), "/sys/fs/cgroup/memory/process_api/4194");
  // A pure v2 host (systemd): our cgroup is a path in the unified hierarchy.
  auto v2 = cgroup_layout_from(kV2Mounts, "0::/user.slice/user-1000.slice/session-2.scope\n");
  EXPECT_EQ(v2.kind, "v2");
  EXPECT_EQ(v2.summary, "v2 (unified hierarchy at /sys/fs/cgroup)");
  EXPECT_EQ(v2.v2_dir, "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");
  EXPECT_TRUE(v2.v1_dirs.empty());
  // A container that sees only its own subtree: the mount's root is the container's cgroup.
  auto ct = cgroup_layout_from("30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/docker/abc/sub\n");
  EXPECT_EQ(ct.v2_dir, "/sys/fs/cgroup/sub");
  auto out = cgroup_layout_from("30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/elsewhere\n");
  EXPECT_EQ(out.v2_dir, "");  // our cgroup is not inside what the mount shows
  // v2 and v1 both under /sys/fs/cgroup (systemd's hybrid).
  EXPECT_EQ(cgroup_hierarchy_from(kV2Mounts + "40 30 0:40 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"),
            "hybrid (v2 at /sys/fs/cgroup, v1 controllers below it)");
  // A mount point with a blank (mountinfo writes \040).
  auto esc = cgroup_layout_from("50 1 0:50 / /mnt/my\\040cg rw - cgroup2 none rw\n", "0::/a\n");
  EXPECT_EQ(esc.kind, "v2");
  EXPECT_EQ(esc.v2_dir, "/mnt/my cg/a");
  EXPECT_EQ(cgroup_hierarchy_from("22 1 0:21 / /proc rw - proc proc rw\n"), "none mounted");
  // A v1 controller mounted somewhere else is not the system's hierarchy.
  EXPECT_EQ(cgroup_hierarchy_from("60 1 0:60 / /mnt/x rw - cgroup cgroup rw,pids\n"), "none mounted");
  // This machine: the report says what /proc/self/mountinfo says.
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string here = cgroup_hierarchy_from(ss.str());
  EXPECT_NE(isolation_report().find("cgroup hierarchy:           " + here), std::string::npos) << isolation_report();
  if (ss.str().find(" /sys/fs/cgroup rw") != std::string::npos && ss.str().find(" - cgroup2 ") != std::string::npos &&
      ss.str().find(" - cgroup cgroup ") == std::string::npos) {
    EXPECT_EQ(here.rfind("v2", 0), 0u) << here;
  }
}

TEST(SandboxIsolation, CgroupFileTexts) {
  using sandbox_detail::cgroup2_cpu_max;
  using sandbox_detail::cgroup_counter;
  EXPECT_EQ(cgroup2_cpu_max(1), "100000 100000");
  EXPECT_EQ(cgroup2_cpu_max(0.25), "25000 100000");
  EXPECT_EQ(cgroup2_cpu_max(2.5), "250000 100000");
  EXPECT_EQ(cgroup2_cpu_max(0.001), "1000 100000");  // the kernel's floor
  EXPECT_EQ(cgroup2_cpu_max(0), "max 100000");
  // memory.events (v2) and memory.oom_control (v1): the oom_kill line, not oom or oom_group_kill.
  const std::string events = "low 0\nhigh 0\nmax 17\noom 3\noom_kill 2\noom_group_kill 0\n";
  EXPECT_EQ(cgroup_counter(events, "oom_kill"), 2);
  EXPECT_EQ(cgroup_counter(events, "max"), 17);
  EXPECT_EQ(cgroup_counter("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n", "oom_kill"), 5);
  EXPECT_EQ(cgroup_counter("nr_periods 40\nnr_throttled 12\nthrottled_usec 9\n", "nr_throttled"), 12);
  EXPECT_EQ(cgroup_counter("nr_periods 40\n", "nr_throttled"), 0);
}

TEST(SandboxIsolation, CgroupBackendIsReported) {
  const auto& c = sandbox_detail::caps();
  EXPECT_TRUE(c.cgroup_backend == "v1" || c.cgroup_backend == "v2" || c.cgroup_backend == "none") << c.cgroup_backend;
  EXPECT_FALSE(c.cgroup_backend_why.empty());
  std::string rep = isolation_report();
  EXPECT_NE(rep.find("cgroups used by the runs:   " + std::string(c.cgroup_backend == "none" ? "none" : c.cgroup_backend + ":")),
            std::string::npos) << rep;
  std::string lvl = isolation_level();
  EXPECT_NE(lvl.find(" cgroup=" + std::string(c.cgroup_backend == "none" ? "none" : c.cgroup_backend + ":")),
            std::string::npos) << lvl;
  std::string js = isolation_report_json();
  for (const char* k : {"\"cgroup_kind\"", "\"cgroup_backend\"", "\"cgroup_v2_offered\"", "\"cgroup_hierarchy\"",
                        "\"cgroup_v1_pids\"", "\"level\""})
    EXPECT_NE(js.find(k), std::string::npos) << k << "\n" << js;
  // Without root there are no v1 cgroups; the v1 backend needs one of them.
  if (c.cgroup_backend == "v1") {
    EXPECT_TRUE(c.cgroup_pids || c.cgroup_memory || c.cgroup_cpu);
  }
  if (c.cgroup_backend == "v2") {
    EXPECT_TRUE(c.cgroup2_usable);
  }
}

TEST(SandboxIsolation, ReportNamesEveryMechanism) {
  std::string rep = isolation_report();
  for (const char* k : {"user namespace", "pid namespace", "net namespace", "mount namespace", "ipc namespace",
                        "uts namespace", "seccomp", "cgroup v1 pids", "cgroup v1 memory", "cgroup v1 cpu", "cgroup v2 subtree",
                        "cgroups used by the runs", "uid 65534", "bubblewrap"})
    EXPECT_NE(rep.find(k), std::string::npos) << k;
  std::string lvl = isolation_level();
  EXPECT_TRUE(lvl.rfind("full", 0) == 0 || lvl.rfind("partial", 0) == 0 || lvl.rfind("degraded", 0) == 0) << lvl;
}
