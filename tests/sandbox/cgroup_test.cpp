// The sandbox's cgroups against the real kernel, with whichever backend the
// process got (sandbox_cgroup_test: the host's choice; sandbox_cgroup2_test:
// PREFOPT_TEST_CGROUP2=1, which first mounts a cgroup2 hierarchy in a private
// mount namespace and points the sandbox at it with PREFOPT_CGROUP2_ROOT).
// A limit is tested only when the backend has its controller; otherwise the
// test is skipped with the reason (a cgroup2 mount only gets the controllers
// that no v1 hierarchy holds).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_impl.h"

using namespace prefopt;
using sandbox_detail::caps;
using sandbox_detail::WorkerCgroup;

namespace {

std::string g_cgroup2_mount;  // PREFOPT_TEST_CGROUP2=1: where main() mounted cgroup2
std::string g_setup_problem;  // why that failed

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

bool cgroup2_mode() { return std::getenv("PREFOPT_TEST_CGROUP2") != nullptr; }

// Skips unless the backend this process was asked for is in use.
#define REQUIRE_BACKEND()                                                                          \
  do {                                                                                             \
    if (cgroup2_mode() && !g_setup_problem.empty()) GTEST_SKIP() << g_setup_problem;               \
    if (caps().cgroup_backend == "none") GTEST_SKIP() << "no cgroup backend: " << caps().cgroup_backend_why; \
  } while (0)

bool has_controller(const WorkerCgroup& g, const char* c) {
  const std::string d = g.describe();
  return ("," + d.substr(d.find(':') + 1) + ",").find(std::string(",") + c + ",") != std::string::npos;
}

// A child that waits until the parent put it into `g`, then runs `work` and
// _exits with its result; returns its wait status and CPU time.
template <typename F>
int in_cgroup(WorkerCgroup& g, F work, double* cpu_s = nullptr) {
  int go[2];
  if (pipe(go) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(go[1]);
    if (read(go[0], &c, 1) != 1) _exit(120);
    _exit(work());
  }
  close(go[0]);
  const bool added = g.add(pid);
  if (write(go[1], "x", 1) != 1) {
  }
  close(go[1]);
  int st = 0;
  rusage ru{};
  while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  if (cpu_s) *cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return added ? st : -1;
}

Limits quick() {
  Limits l;
  l.wall_seconds = 30;
  l.cpu_seconds = 20;
  return l;
}

}  // namespace

TEST(SandboxCgroup, BackendIsTheOneAskedFor) {
  const auto& c = caps();
  std::fprintf(stderr, "%s", isolation_report().c_str());
  if (!cgroup2_mode()) {
    // The host's choice: v1 where our v1 cgroups are usable (root), else v2
    // with a controller, else none; never v2 without a usable subtree.
    if (c.root && (c.cgroup_pids || c.cgroup_memory || c.cgroup_cpu)) {
      EXPECT_EQ(c.cgroup_backend, "v1");
    }
    if (c.cgroup_backend == "v2") {
      EXPECT_TRUE(c.cgroup2_usable && !c.cgroup2_enabled.empty());
    }
    if (!c.root && !c.cgroup2_usable) {
      EXPECT_EQ(c.cgroup_backend, "none");
    }
    return;
  }
  if (!g_setup_problem.empty()) GTEST_SKIP() << g_setup_problem;
  EXPECT_EQ(c.cgroup_backend, "v2") << c.cgroup_backend_why << "; " << c.cgroup2_problem;
  EXPECT_EQ(c.cgroup2_base, g_cgroup2_mount);
  EXPECT_TRUE(c.cgroup2_usable);
  // What the mount offers is what the kernel says; what we got is a part of it.
  std::string offered = slurp(g_cgroup2_mount + "/cgroup.controllers");
  while (!offered.empty() && offered.back() == '\n') offered.pop_back();
  EXPECT_EQ(c.cgroup2_available, offered);
  for (const char* n : {"pids", "memory", "cpu"}) {
    const bool got = (" " + c.cgroup2_enabled + " ").find(std::string(" ") + n + " ") != std::string::npos;
    const bool off = (" " + offered + " ").find(std::string(" ") + n + " ") != std::string::npos;
    EXPECT_EQ(got, off) << n << ": offered \"" << offered << "\", delegated \"" << c.cgroup2_enabled << "\"";
  }
  EXPECT_NE(isolation_level().find(" cgroup=v2:"), std::string::npos) << isolation_level();
}

TEST(SandboxCgroup, ZygoteLivesInTheWorkersCgroupWhichIsRemovedAfterwards) {
  REQUIRE_BACKEND();
  const std::string me = std::to_string(getpid());
  std::string seen;
  {
    SandboxPool p(1, quick());
    RunResult r = p.run("print(open('/proc/self/cgroup').read())\n", quick());
    ASSERT_EQ(r.verdict, Verdict::PASSED) << r.detail << r.stderr_text;
    EXPECT_NE(r.isolation.find(" cgroup=" + caps().cgroup_backend + ":"), std::string::npos) << r.isolation;
    seen = r.stdout_text;
    if (caps().cgroup_backend == "v2") {
      // "0::/prefopt-<pid>/w<i>" (relative to the worker's cgroup namespace,
      // rooted where this process is: the root of the mount).
      const size_t at = seen.find("0::");
      ASSERT_NE(at, std::string::npos) << seen;
      const std::string path = seen.substr(at + 3, seen.find('\n', at) - at - 3);
      const std::string tail = "/prefopt-" + me + "/w";
      ASSERT_NE(path.find(tail), std::string::npos) << path;
      const std::string leaf = caps().cgroup2_base + path.substr(path.find(tail));
      // From outside: the leaf holds exactly the zygote between runs.
      const std::string procs = slurp(leaf + "/cgroup.procs");
      EXPECT_EQ(std::count(procs.begin(), procs.end(), '\n'), 1) << leaf << ": " << procs;
      seen = leaf;
    } else {
      EXPECT_NE(seen.find("prefopt-sandbox-" + me + "-"), std::string::npos) << seen;
    }
  }
  if (caps().cgroup_backend == "v2") {
    struct stat st;
    EXPECT_NE(stat(seen.c_str(), &st), 0) << seen << " outlived its pool";
    EXPECT_NE(stat((caps().cgroup2_base + "/prefopt-" + me).c_str(), &st), 0) << "the subtree outlived its pools";
  } else {
    for (const std::string& base : {caps().cgroup_pids_base, caps().cgroup_memory_base, caps().cgroup_cpu_base}) {
      if (base.empty()) continue;
      DIR* d = opendir(base.c_str());
      ASSERT_NE(d, nullptr) << base;
      while (dirent* e = readdir(d))
        EXPECT_NE(std::string(e->d_name).rfind("prefopt-sandbox-" + me + "-", 0), 0u) << base << "/" << e->d_name;
      closedir(d);
    }
  }
}

TEST(SandboxCgroup, ForkBombStopsAtPidsMax) {
  REQUIRE_BACKEND();
  auto g = WorkerCgroup::create(901);
  ASSERT_TRUE(g) << "no cgroup for the backend " << caps().cgroup_backend;
  if (!has_controller(*g, "pids")) GTEST_SKIP() << "no pids controller in " << g->describe() << " (" << caps().cgroup2_problem << ")";
  g->set_limits(6, int64_t(1) << 30, 0);
  // Root ignores RLIMIT_NPROC: only pids.max can stop these forks.
  int st = in_cgroup(*g, [] {
    static pid_t kids[200];
    int n = 0;
    while (n < 200) {
      pid_t k = fork();
      if (k == 0) {
        pause();
        _exit(0);
      }
      if (k < 0) break;
      kids[n++] = k;
    }
    for (int i = 0; i < n; ++i) kill(kids[i], SIGKILL);
    for (int i = 0; i < n; ++i) waitpid(kids[i], nullptr, 0);
    return n;
  });
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 5) << "6 processes allowed: the child and 5 forks";
  EXPECT_EQ(g->pids_current(), 0);
}

TEST(SandboxCgroup, MemoryHogIsKilledAtTheLimit) {
  REQUIRE_BACKEND();
  auto g = WorkerCgroup::create(902);
  ASSERT_TRUE(g);
  if (!has_controller(*g, "memory")) GTEST_SKIP() << "no memory controller in " << g->describe() << " (" << caps().cgroup2_problem << ")";
  g->set_limits(64, 48 << 20, 0);
  const int64_t before = g->oom_kills();
  int st = in_cgroup(*g, [] {
    const size_t n = size_t(256) << 20;
    char* p = static_cast<char*>(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) return 2;
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    return 0;  // touched 256 MiB: the limit did not hold
  });
  ASSERT_TRUE(WIFSIGNALED(st)) << "exit " << (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  EXPECT_EQ(WTERMSIG(st), SIGKILL);
  EXPECT_EQ(g->oom_kills(), before + 1);
  // Negative control: under the limit the same child lives.
  int ok = in_cgroup(*g, [] {
    const size_t n = size_t(8) << 20;
    char* p = static_cast<char*>(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; p != MAP_FAILED && i < n; i += 4096) p[i] = 1;
    return p == MAP_FAILED ? 2 : 0;
  });
  EXPECT_TRUE(WIFEXITED(ok) && WEXITSTATUS(ok) == 0) << ok;
  EXPECT_EQ(g->oom_kills(), before + 1);
}

TEST(SandboxCgroup, CpuSpinnerIsThrottled) {
  REQUIRE_BACKEND();
  auto g = WorkerCgroup::create(903);
  ASSERT_TRUE(g);
  if (!has_controller(*g, "cpu")) GTEST_SKIP() << "no cpu controller in " << g->describe() << " (" << caps().cgroup2_problem << ")";
  // 2 ms of CPU per 100 ms period: any period in which the spinner runs more is throttled.
  g->set_limits(64, int64_t(1) << 30, 0.02);
  EXPECT_EQ(g->cpu_throttled(), 0);
  double cpu = 0;
  int st = in_cgroup(
      *g,
      [] {
        auto t0 = std::chrono::steady_clock::now();
        volatile unsigned long x = 0;
        while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500)) ++x;
        return 0;
      },
      &cpu);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  std::fprintf(stderr, "spinner at 0.02 CPUs for 1.5 s: %.3f CPU-seconds, nr_throttled %lld\n", cpu,
               static_cast<long long>(g->cpu_throttled()));
  EXPECT_GT(g->cpu_throttled(), 0);
  // 15 periods of 2 ms, with slack for the kernel's accounting.
  EXPECT_LT(cpu, 0.25) << "CPU seconds used in 1.5 s at 0.02 CPUs";
}

TEST(SandboxCgroup, MemoryAcrossProcessesIsMemoryLimit) {
  REQUIRE_BACKEND();
  if (caps().cgroup_backend == "v1" ? !caps().cgroup_memory
                                    : (" " + caps().cgroup2_enabled + " ").find(" memory ") == std::string::npos)
    GTEST_SKIP() << "no memory cgroup (" << caps().cgroup_backend << ": " << caps().cgroup2_problem << ")";
  // Each process is under the address-space limit; together they pass the cgroup's.
  Limits l = quick();
  l.memory_bytes = 128 << 20;  // cgroup: 128 + 96 MiB for the whole tree
  SandboxPool p(1, l);
  RunResult r = p.run(
      "import os, time\npids = []\nfor i in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
      "        b = bytearray(100 << 20)\n        for j in range(0, len(b), 4096):\n            b[j] = 1\n"
      "        time.sleep(3)\n        os._exit(0)\n    pids.append(pid)\n"
      "for p in pids:\n    _, st = os.waitpid(p, 0)\n    assert st == 0, st\n",
      l);
  EXPECT_EQ(r.verdict, Verdict::MEMORY_LIMIT) << r.detail << r.stderr_text;
  EXPECT_NE(r.detail.find("memory cgroup"), std::string::npos) << r.detail;
}

TEST(SandboxCgroup, SandboxedForkBombIsBounded) {
  REQUIRE_BACKEND();
  Limits l = quick();
  l.max_processes = 10;
  SandboxPool p(1, l);
  RunResult r = p.run(
      "import os, time\nn = 0\nwhile n < 5000:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
      "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\nprint(n)\n",
      l);
  EXPECT_EQ(r.verdict, Verdict::PASSED) << r.detail << r.stderr_text;
  const int n = std::atoi(r.stdout_text.c_str());
  EXPECT_GE(n, 1);
  EXPECT_LT(n, l.max_processes) << "fork() was not capped";
}

// The "no internal processes" rule, on the kernel: a cgroup that holds a
// process cannot enable controllers for its children; cgroup2_delegate moves
// this process into a leaf first. Needs a controller the mount offers.
TEST(SandboxCgroup, DelegationMovesUsOutOfTheBase) {
  if (!cgroup2_mode()) GTEST_SKIP() << "runs in sandbox_cgroup2_test (a private cgroup2 mount)";
  if (!g_setup_problem.empty()) GTEST_SKIP() << g_setup_problem;
  std::string offered = slurp(g_cgroup2_mount + "/cgroup.controllers");
  std::istringstream in(offered);
  std::string ctrl;
  in >> ctrl;
  if (ctrl.empty()) GTEST_SKIP() << "the cgroup2 mount offers no controller at all";
  const std::string me = std::to_string(getpid());
  const std::string base = g_cgroup2_mount + "/t-" + me;
  // The root offers it to its children (base among them) only once enabled there.
  const bool was_on = slurp(g_cgroup2_mount + "/cgroup.subtree_control").find(ctrl) != std::string::npos;
  if (!was_on) {
    ASSERT_TRUE(write_text(g_cgroup2_mount + "/cgroup.subtree_control", "+" + ctrl)) << ctrl;
  }
  ASSERT_EQ(mkdir(base.c_str(), 0755), 0) << std::strerror(errno);
  ASSERT_TRUE(write_text(base + "/cgroup.procs", me));
  // Negative control: with us inside, base cannot delegate.
  {
    int fd = open((base + "/cgroup.subtree_control").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string w = "+" + ctrl;
    EXPECT_LT(write(fd, w.data(), w.size()), 0);
    EXPECT_EQ(errno, EBUSY);
    close(fd);
  }
  std::string enabled, problem;
  const std::string dir = sandbox_detail::cgroup2_delegate(base, {ctrl}, &enabled, &problem);
  EXPECT_EQ(dir, base + "/prefopt-" + me) << problem;
  EXPECT_EQ(enabled, ctrl) << problem;
  EXPECT_EQ(problem, "");
  const std::string own = slurp("/proc/self/cgroup");
  EXPECT_NE(own.find("0::/t-" + me + "/prefopt-" + me + "-self\n"), std::string::npos) << own;
  EXPECT_NE(slurp(dir + "/cgroup.subtree_control").find(ctrl), std::string::npos);
  // A leaf under it has the controller's files.
  const std::string leaf = dir + "/w0";
  ASSERT_EQ(mkdir(leaf.c_str(), 0755), 0);
  EXPECT_NE(slurp(leaf + "/cgroup.controllers").find(ctrl), std::string::npos);
  // Back to the root of the mount; everything removed.
  EXPECT_TRUE(write_text(g_cgroup2_mount + "/cgroup.procs", me));
  EXPECT_EQ(rmdir(leaf.c_str()), 0);
  EXPECT_EQ(rmdir(dir.c_str()), 0);
  EXPECT_EQ(rmdir((base + "/prefopt-" + me + "-self").c_str()), 0);
  write_text(base + "/cgroup.subtree_control", "-" + ctrl);
  EXPECT_EQ(rmdir(base.c_str()), 0) << std::strerror(errno);
  if (!was_on) write_text(g_cgroup2_mount + "/cgroup.subtree_control", "-" + ctrl);
}

// Without root: a subtree chowned to the user (what systemd's Delegate=yes
// does) works only for a process that starts inside it; one started outside
// cannot move its zygotes in, and the probe says so and falls back.
TEST(SandboxCgroup, UnprivilegedUserNeedsToStartInsideTheDelegatedSubtree) {
  if (!cgroup2_mode()) GTEST_SKIP() << "runs in sandbox_cgroup2_test (a private cgroup2 mount)";
  if (!g_setup_problem.empty()) GTEST_SKIP() << g_setup_problem;
  const std::string deleg = g_cgroup2_mount + "/deleg-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(deleg.c_str(), 0755), 0) << std::strerror(errno);
  for (const char* f : {"", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"})
    ASSERT_EQ(chown((deleg + f).c_str(), 65534, 65534), 0) << f;
  // `prefopt sandbox-info --json` as uid 65534, started inside `deleg` or not.
  auto probe_as_nobody = [&](bool inside) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      if (inside && !write_text(deleg + "/cgroup.procs", "0")) _exit(120);
      if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        _exit(121);
      setenv("PREFOPT_CGROUP2_ROOT", deleg.c_str(), 1);
      unsetenv("PREFOPT_SANDBOX_CGROUP");
      execl(PREFOPT_EXE, PREFOPT_EXE, "sandbox-info", "--json", static_cast<char*>(nullptr));
      _exit(122);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, n);
    close(out[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
    return nlohmann::json::parse(text, nullptr, false);
  };
  auto in = probe_as_nobody(true);
  ASSERT_TRUE(in.is_object());
  EXPECT_EQ(in["root"], false);
  EXPECT_EQ(in["cgroup_backend"], "v2") << in.dump(2);
  EXPECT_EQ(in["cgroup_v2_usable"], true);
  EXPECT_EQ(in["cgroup_v2_base"], deleg);
  auto out = probe_as_nobody(false);
  ASSERT_TRUE(out.is_object());
  EXPECT_EQ(out["cgroup_backend"], "none") << out.dump(2);
  EXPECT_NE(out["cgroup_v2_problem"].get<std::string>().find("cannot move a process"), std::string::npos)
      << out.dump(2);
  // The probes left nothing behind.
  DIR* d = opendir(deleg.c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) EXPECT_NE(std::string(e->d_name).rfind("prefopt-", 0), 0u) << e->d_name;
  closedir(d);
  EXPECT_EQ(rmdir(deleg.c_str()), 0) << std::strerror(errno);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (cgroup2_mode()) {
    // Before any thread or probe: a private mount namespace with a cgroup2
    // mount of our own (the same unified hierarchy as the host's), then the
    // sandbox is told to use it.
    char tmpl[] = "/tmp/prefopt-cgroup2-test-XXXXXX";
    if (geteuid() != 0) {
      g_setup_problem = "mounting cgroup2 needs root";
    } else if (unshare(CLONE_NEWNS) != 0) {
      g_setup_problem = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    } else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      g_setup_problem = std::string("making / private: ") + std::strerror(errno);
    } else if (!mkdtemp(tmpl)) {
      g_setup_problem = std::string("mkdtemp: ") + std::strerror(errno);
    } else if (mount("none", tmpl, "cgroup2", 0, nullptr) != 0) {
      g_setup_problem = std::string("mount -t cgroup2: ") + std::strerror(errno);
      rmdir(tmpl);
    } else {
      g_cgroup2_mount = tmpl;
      setenv("PREFOPT_CGROUP2_ROOT", tmpl, 1);
      setenv("PREFOPT_SANDBOX_CGROUP", "v2", 1);
    }
    if (!g_setup_problem.empty()) std::fprintf(stderr, "cgroup2 setup: %s (the v2 tests skip)\n", g_setup_problem.c_str());
  }
  const int rc = RUN_ALL_TESTS();
  if (!g_cgroup2_mount.empty()) {
    umount2(g_cgroup2_mount.c_str(), MNT_DETACH);
    rmdir(g_cgroup2_mount.c_str());
  }
  return rc;
}
