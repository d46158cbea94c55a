// The attack suite: every attack is contained with the right verdict, the
// harness keeps working afterwards (a trivial program passes on every
// worker), and no process of the run survives it (read from /proc: no
// descendant of this test runs as uid 65534 once the run returned).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <signal.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "sandbox/sandbox.h"
#include "test_util.h"

using namespace prefopt;
using prefopt::testing::describe;
using prefopt::testing::run_survivors;

namespace {

Limits quick() {
  Limits l;
  l.wall_seconds = 4;
  l.cpu_seconds = 4;
  return l;
}

SandboxPool& pool() {
  static SandboxPool p(2, quick());
  return p;
}

// The run left nothing behind and both workers still pass a trivial program.
void expect_contained(const RunResult& r, const std::string& what) {
  auto surv = run_survivors();
  EXPECT_TRUE(surv.empty()) << what << ": processes of the run survived: " << describe(surv);
  EXPECT_EQ(r.isolation.rfind("full", 0), 0u) << what << ": " << r.isolation;
  auto ok = pool().run_all({"print('ok')", "print('ok')"});
  for (auto& o : ok) {
    EXPECT_EQ(o.verdict, Verdict::PASSED) << what << ": harness broken afterwards: " << o.detail << o.stderr_text;
    EXPECT_EQ(o.stdout_text, "ok\n");
  }
}

std::string read_file_or_empty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult run(const std::string& program, Limits l = quick()) { return pool().run(program, l); }
RunResult run_tested(const std::string& code, const std::string& tests, Limits l = quick()) {
  return pool().run_tests(code, tests, l);
}

}  // namespace

TEST(SandboxAttack, PositiveControl) {
  RunResult r = run_tested("def f(x):\n    return x + 1\n", "assert f(1) == 2\nprint('tests done')\n");
  EXPECT_EQ(r.verdict, Verdict::PASSED) << r.detail << r.stderr_text;
  EXPECT_TRUE(r.secret_ok);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_text, "tests done\n");
  RunResult who = run("import os\nprint(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), os.getcwd())\n");
  EXPECT_EQ(who.stdout_text, "65534 65534 65534 [] /tmp\n") << who.stderr_text;
  expect_contained(r, "positive control");
}

TEST(SandboxAttack, FakePassesFail) {
  struct Case {
    const char* name;
    std::string code, tests;
  };
  const Case cases[] = {
      {"exit(0) before the asserts", "import sys\nsys.exit(0)\ndef f():\n    return 1\n", "assert f() == 2\n"},
      {"exit() inside the tested function", "import sys\ndef f():\n    sys.exit(0)\n", "assert f() == 2\n"},
      {"os._exit(0)", "import os\ndef f():\n    os._exit(0)\n", "assert f() == 2\n"},
      {"exec /bin/true", "import os\ndef f():\n    os.execv('/bin/true', ['true'])\n", "assert f() == 2\n"},
      {"atexit os._exit(0)", "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f():\n    return 1\n",
       "assert f() == 2\n"},
      {"guessed secret on every fd",
       "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'PASS ' + b'0' * 32 + b'\\n')\n"
       "    except OSError:\n        pass\nos._exit(0)\n",
       "assert False\n"},
      {"KeyboardInterrupt swallowed by caller", "def f():\n    raise KeyboardInterrupt\n", "f()\n"},
  };
  for (const Case& c : cases) {
    RunResult r = run_tested(c.code, c.tests);
    EXPECT_EQ(r.verdict, Verdict::FAILED) << c.name << ": " << r.detail << "\n" << r.stderr_text;
    EXPECT_FALSE(r.secret_ok) << c.name;
    expect_contained(r, c.name);
  }
}

TEST(SandboxAttack, ForkBombIsCappedAndSwept) {
  // Children sleep, so they pile up until the process limit stops fork().
  RunResult r = run(
      "import os, time\nn = 0\nwhile n < 5000:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
      "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\nprint(n)\n");
  EXPECT_EQ(r.verdict, Verdict::PASSED) << r.detail << r.stderr_text;
  int n = std::atoi(r.stdout_text.c_str());
  EXPECT_GE(n, 1);
  EXPECT_LT(n, quick().max_processes) << "fork() was not capped";
  expect_contained(r, "fork bomb (capped)");
  // Every process forking forever.
  RunResult b = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
  EXPECT_EQ(b.verdict, Verdict::TIMEOUT) << b.detail;
  expect_contained(b, "fork bomb");
}

TEST(SandboxAttack, ThreadBomb) {
  RunResult r = run(
      "import threading, time\nts = []\nwhile True:\n    t = threading.Thread(target=time.sleep, args=(60,))\n"
      "    t.start()\n    ts.append(t)\n");
  EXPECT_EQ(r.verdict, Verdict::FAILED) << r.detail << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("can't start new thread"), std::string::npos) << r.stderr_text;
  expect_contained(r, "thread bomb");
}

TEST(SandboxAttack, MemoryBombs) {
  RunResult big = run("x = bytearray(8 << 30)\n");
  EXPECT_EQ(big.verdict, Verdict::MEMORY_LIMIT) << big.detail;
  expect_contained(big, "one huge allocation");
  Limits small = quick();
  small.memory_bytes = 256 << 20;  // bytearray() touches its pages; page faults are slow in a VM
  RunResult grow = run("a = []\nwhile True:\n    a.append(bytearray(16 << 20))\n", small);
  EXPECT_EQ(grow.verdict, Verdict::MEMORY_LIMIT) << grow.detail;
  expect_contained(grow, "growing allocation");
  // Several processes, each under the address-space limit, together over the
  // memory cgroup: the OOM killer steps in.
  Limits l = quick();
  l.memory_bytes = 128 << 20;  // cgroup cap: 128 + 64 MiB for the whole tree
  l.wall_seconds = 15;         // touching pages is slow on a loaded VM
  RunResult many = run(
      "import os, time\npids = []\nfor i in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
      "        b = bytearray(100 << 20)\n        for j in range(0, len(b), 4096):\n            b[j] = 1\n"
      "        time.sleep(3)\n        os._exit(0)\n    pids.append(pid)\n"
      "for p in pids:\n    _, st = os.waitpid(p, 0)\n    assert st == 0, st\n",
      l);
  EXPECT_EQ(many.verdict, Verdict::MEMORY_LIMIT) << many.detail << many.stderr_text;
  expect_contained(many, "memory across processes");
}

TEST(SandboxAttack, InfiniteLoopIgnoringSignals) {
  Limits l = quick();
  l.wall_seconds = 2;
  RunResult r = run(
      "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
      "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n",
      l);
  EXPECT_EQ(r.verdict, Verdict::TIMEOUT) << r.detail;
  EXPECT_GE(r.wall_seconds, 2.0);
  EXPECT_LT(r.wall_seconds, 6.0);
  expect_contained(r, "infinite loop (wall clock)");
  // CPU limit first: SIGXCPU ignored, the hard limit's SIGKILL follows.
  l.wall_seconds = 10;
  l.cpu_seconds = 1;
  RunResult c = run("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n", l);
  EXPECT_EQ(c.verdict, Verdict::TIMEOUT) << c.detail;
  EXPECT_LT(c.wall_seconds, 8.0);
  expect_contained(c, "infinite loop (CPU limit)");
}

TEST(SandboxAttack, DiskFill) {
  RunResult one = run("with open('fill', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))\n");
  EXPECT_EQ(one.verdict, Verdict::FAILED) << one.detail;
  EXPECT_NE(one.stderr_text.find("File too large"), std::string::npos) << one.stderr_text;
  expect_contained(one, "one big file");
  RunResult many = run(
      "i = 0\nwhile True:\n    with open('f%d' % i, 'wb') as f:\n        f.write(b'x' * (8 << 20))\n    i += 1\n");
  EXPECT_EQ(many.verdict, Verdict::FAILED) << many.detail;
  EXPECT_NE(many.stderr_text.find("No space left"), std::string::npos) << many.stderr_text;
  expect_contained(many, "many files");
  // The next runs start with an empty work dir and /dev/shm.
  for (auto& r : pool().run_all({"import os\nassert os.listdir('.') == [], os.listdir('.')\n"
                                 "assert os.listdir('/dev/shm') == []\n",
                                 "import os\nassert os.listdir('.') == [], os.listdir('.')\n"}))
    EXPECT_EQ(r.verdict, Verdict::PASSED) << r.stderr_text;
  RunResult ro = run("open('/usr/evil', 'w')\n");
  EXPECT_EQ(ro.verdict, Verdict::FAILED);
  EXPECT_NE(ro.stderr_text.find("Read-only file system"), std::string::npos) << ro.stderr_text;
}

TEST(SandboxAttack, NetworkConnectToLocalListener) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(ls, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(ls, 8), 0);
  socklen_t len = sizeof a;
  getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  RunResult r = run("import socket\ns = socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                    "), timeout=2)\ns.sendall(b'exfiltrated')\nprint('connected')\n");
  EXPECT_EQ(r.verdict, Verdict::FAILED) << r.detail;
  EXPECT_EQ(r.stdout_text.find("connected"), std::string::npos);
  pollfd p{ls, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0) << "the listener saw a connection";
  close(ls);
  expect_contained(r, "network connect");
  // Even without the seccomp filter's help there is no route: the net namespace
  // has nothing but its (down) loopback.
  RunResult nic = run("print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n");
  EXPECT_EQ(nic.verdict, Verdict::PASSED) << nic.stderr_text;
  EXPECT_EQ(nic.stdout_text, "['lo']\n");
}

TEST(SandboxAttack, ReadingFilesOutsideTheWorkDir) {
  const std::string token = "prefopt-secret-" + std::to_string(getpid()) + "-xyzzy";
  const std::string tmp_secret = "/tmp/prefopt_sbx_secret_" + std::to_string(getpid());
  const std::string root_secret = "/root/prefopt_sbx_secret_" + std::to_string(getpid());
  atomic_write(tmp_secret, token);
  atomic_write(root_secret, token);
  RunResult r = run("import os\nfor p in ['" + tmp_secret + "', '" + root_secret +
                    "', '/proc/1/root" + tmp_secret + "', '../../.." + tmp_secret +
                    "']:\n    try:\n        print(open(p).read())\n    except OSError as e:\n        print('denied', p, type(e).__name__)\n"
                    "print(sorted(os.listdir('/')))\n");
  EXPECT_EQ(r.verdict, Verdict::PASSED) << r.stderr_text;
  EXPECT_EQ(r.stdout_text.find(token), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("['bin', 'dev', 'etc', 'lib'"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("'root'"), std::string::npos) << r.stdout_text;
  remove_all(tmp_secret);
  remove_all(root_secret);
  expect_contained(r, "reading outside");
}

TEST(SandboxAttack, KillingTheParent) {
  RunResult p = run("import os\nos.kill(os.getppid(), 9)\nprint('parent killed?')\n");
  EXPECT_EQ(p.verdict, Verdict::FAILED) << p.detail;
  EXPECT_NE(p.stderr_text.find("PermissionError"), std::string::npos) << p.stderr_text;
  expect_contained(p, "kill the parent");
  // kill -9 -1 reaches only the run's own processes (Linux spares the caller).
  RunResult all = run("import os, time\nif os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\n"
                      "os.kill(-1, 9)\nprint('caller alive', os.wait()[1])\n");
  EXPECT_EQ(all.verdict, Verdict::PASSED) << all.detail << all.stderr_text;
  EXPECT_EQ(all.stdout_text, "caller alive 9\n");
  expect_contained(all, "kill -9 -1");
  RunResult grp = run("import os\nos.killpg(0, 9)\n");
  EXPECT_EQ(grp.verdict, Verdict::CRASHED) << grp.detail;
  expect_contained(grp, "kill the process group");
}

TEST(SandboxAttack, SetsidDaemonDoesNotOutliveTheRun) {
  RunResult r = run(
      "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        for _ in range(600):\n"
      "            time.sleep(0.1)\n        open('/tmp/late', 'w').write('still here')\n    os._exit(0)\n"
      "os.wait()\nprint('main done')\n");
  EXPECT_EQ(r.verdict, Verdict::PASSED) << r.detail << r.stderr_text;
  expect_contained(r, "setsid daemon");
}

TEST(SandboxAttack, OutputFlood) {
  RunResult r = run("import sys\nsys.stdout.write('x' * (10 << 20))\n");
  EXPECT_EQ(r.verdict, Verdict::OUTPUT_LIMIT) << r.detail;
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(static_cast<int64_t>(r.stdout_text.size()), quick().output_bytes);
  expect_contained(r, "10 MB of output");
  // Over the kept cap but under the kill threshold: still judged on the program.
  RunResult m = run("import sys\nsys.stderr.write('y' * (1 << 20))\nprint('end')\n");
  EXPECT_EQ(m.verdict, Verdict::PASSED) << m.detail;
  EXPECT_TRUE(m.stderr_truncated);
  EXPECT_FALSE(m.stdout_truncated);
  EXPECT_EQ(m.stdout_text, "end\n");
  EXPECT_EQ(static_cast<int64_t>(m.stderr_text.size()), quick().output_bytes);
}

TEST(SandboxAttack, CrashesAreCrashed) {
  RunResult seg = run("import ctypes\nctypes.string_at(0)\n");
  EXPECT_EQ(seg.verdict, Verdict::CRASHED) << seg.detail;
  EXPECT_EQ(seg.signal, 11);
  RunResult abrt = run("import os\nos.abort()\n");
  EXPECT_EQ(abrt.verdict, Verdict::CRASHED) << abrt.detail;
  expect_contained(abrt, "abort");
}

TEST(SandboxAttack, ConcurrentRunsAreSeparate) {
  // Both workers at once: each run sees only its own files and processes.
  std::vector<std::string> progs;
  for (int i = 0; i < 6; ++i)
    progs.push_back("import os, time\nopen('mine', 'w').write('" + std::to_string(i) +
                    "')\ntime.sleep(0.3)\nprint(open('mine').read(), sorted(os.listdir('.')),"
                    " len([p for p in os.listdir('/proc') if p.isdigit()]))\n");
  auto rs = pool().run_all(progs);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(rs[i].verdict, Verdict::PASSED) << rs[i].stderr_text;
    // Own file only; /proc shows the zygote and this run's process.
    EXPECT_EQ(rs[i].stdout_text, std::to_string(i) + " ['mine'] 2\n");
  }
}

TEST(SandboxAttack, LargeAndOddPrograms) {
  // Over the zygote's compile threshold (256 KiB): compiled in the run itself.
  std::string big = "x = 0\n";
  for (int i = 0; i < 12000; ++i) big += "x += " + std::to_string(i) + "  # padding padding padding\n";
  big += "print(x)\n";
  ASSERT_GT(big.size(), 300000u);
  RunResult r = run(big);
  EXPECT_EQ(r.verdict, Verdict::PASSED) << r.detail << r.stderr_text;
  EXPECT_EQ(r.stdout_text, std::to_string(12000LL * 11999 / 2) + "\n");
  // Syntax errors fail (compiled in the zygote, reported by the run).
  RunResult s = run_tested("def f(:\n    pass\n", "assert True\n");
  EXPECT_EQ(s.verdict, Verdict::FAILED);
  EXPECT_NE(s.stderr_text.find("SyntaxError"), std::string::npos) << s.stderr_text;
  EXPECT_NE(s.stderr_text.find("solution.py"), std::string::npos) << s.stderr_text;
  // Invalid UTF-8 and NUL bytes are the program's problem, not the sandbox's.
  RunResult n = run(std::string("print('a')\n\0\xff\n", 14));
  EXPECT_EQ(n.verdict, Verdict::FAILED) << n.detail;
  // Tracebacks point into the program with its source line.
  RunResult t = run_tested("def f(x):\n    return 1 / x\n", "f(0)\n");
  EXPECT_EQ(t.verdict, Verdict::FAILED);
  EXPECT_NE(t.stderr_text.find("File \"solution.py\", line 2, in f"), std::string::npos) << t.stderr_text;
  EXPECT_NE(t.stderr_text.find("return 1 / x"), std::string::npos) << t.stderr_text;
  EXPECT_EQ(t.stderr_text.find("_run"), std::string::npos) << "harness frames leak into the traceback";
  expect_contained(t, "odd programs");
}

TEST(SandboxAttack, LostWorkerIsSandboxErrorAndRecovers) {
  // Kill the zygotes (our children, uid 0) in the middle of a run: an
  // infrastructure failure, never the program's fault; the next runs work.
  std::thread killer([] {
    // Wait until the run's process (uid 65534) exists, then kill the zygotes.
    for (int i = 0; i < 200 && run_survivors().empty(); ++i) usleep(50 * 1000);
    for (auto& p : prefopt::testing::list_processes())
      if (p.ppid == getpid() && p.uid == 0 && p.name.rfind("python3", 0) == 0) kill(p.pid, SIGKILL);
  });
  Limits l = quick();
  l.wall_seconds = 8;
  RunResult r = run("import time\ntime.sleep(3)\n", l);
  killer.join();
  EXPECT_EQ(r.verdict, Verdict::SANDBOX_ERROR) << r.detail;
  EXPECT_FALSE(counts_against_model(r.verdict));
  // The pool's own zygotes were killed too; a worker whose death it has not seen yet may lose
  // one more run, as SANDBOX_ERROR (never a verdict on the program). After that every run works.
  for (auto& o : pool().run_all({"print('ok')", "print('ok')"}))
    EXPECT_TRUE(o.verdict == Verdict::PASSED || o.verdict == Verdict::SANDBOX_ERROR) << o.detail;
  expect_contained(r, "lost worker");
}

TEST(SandboxDegraded, WithoutNamespacesStillJudgesAndSaysSo) {
  // The fallback when namespaces are unavailable: uid 65534, rlimits, seccomp,
  // cgroups and the secret still apply; the result says "degraded".
  setenv("PREFOPT_SANDBOX_NAMESPACES", "0", 1);
  {
    SandboxPool p(1, quick());
    RunResult ok = p.run_tests("def f():\n    return 2\n", "assert f() == 2\n", quick());
    EXPECT_EQ(ok.verdict, Verdict::PASSED) << ok.detail << ok.stderr_text;
    EXPECT_EQ(ok.isolation.rfind("degraded", 0), 0u) << ok.isolation;
    RunResult fake = p.run_tests("import os\nos._exit(0)\n", "assert False\n", quick());
    EXPECT_EQ(fake.verdict, Verdict::FAILED);
    Limits l = quick();
    l.wall_seconds = 1.5;
    RunResult loop = p.run("while True:\n    pass\n", l);
    EXPECT_EQ(loop.verdict, Verdict::TIMEOUT);
    RunResult who = p.run("import os\nprint(os.getuid())\n", quick());
    EXPECT_EQ(who.stdout_text, "65534\n");
    auto surv = run_survivors();
    EXPECT_TRUE(surv.empty()) << describe(surv);
    // The level predicted for this setting says what the runs get.
    const std::string lvl = isolation_level();
    EXPECT_EQ(lvl.rfind("degraded ns=none", 0), 0u) << lvl;
    EXPECT_NE(lvl.find("rootfs=host host-workdir"), std::string::npos) << lvl;
    EXPECT_NE(ok.isolation.find("rootfs=host host-workdir"), std::string::npos) << ok.isolation;
    // Without a pid namespace nothing takes the tree down with the zygote:
    // a setsid daemon (it leaves the run's process group and is re-parented
    // away from the run) must still be killed, after a normal end and after
    // a timeout; it keeps the output pipes open, so it must not stall the run.
    const std::string daemon =
        "import os, time\npid = os.fork()\nif pid == 0:\n    os.setsid()\n    if os.fork() > 0:\n        os._exit(0)\n"
        "    print('daemon', os.getpid(), flush=True)\n    while True:\n        time.sleep(0.05)\n"
        "os.waitpid(pid, 0)\ntime.sleep(0.3)\nprint('run', os.getpid(), flush=True)\n";
    auto pids_in = [](const std::string& out) {
      std::vector<int> v;
      for (const char* key : {"daemon ", "run "}) {
        size_t at = out.find(key);
        if (at != std::string::npos) v.push_back(std::atoi(out.c_str() + at + std::strlen(key)));
      }
      return v;
    };
    auto alive = [](int pid) {
      std::string st = read_file_or_empty("/proc/" + std::to_string(pid) + "/stat");
      size_t rp = st.rfind(')');
      return rp != std::string::npos && rp + 2 < st.size() && st[rp + 2] != 'Z' && st[rp + 2] != 'X';
    };
    RunResult d = p.run(daemon, quick());
    EXPECT_EQ(d.verdict, Verdict::PASSED) << d.detail << d.stderr_text;
    ASSERT_EQ(pids_in(d.stdout_text).size(), 2u) << d.stdout_text;
    for (int pid : pids_in(d.stdout_text)) EXPECT_FALSE(alive(pid)) << "pid " << pid << " outlived its run";
    Limits l2 = quick();
    l2.wall_seconds = 1.5;
    RunResult t = p.run(daemon + "while True:\n    time.sleep(0.05)\n", l2);
    EXPECT_EQ(t.verdict, Verdict::TIMEOUT) << t.detail;
    ASSERT_EQ(pids_in(t.stdout_text).size(), 2u) << t.stdout_text;
    for (int pid : pids_in(t.stdout_text)) EXPECT_FALSE(alive(pid)) << "pid " << pid << " outlived its run";
    RunResult after = p.run("print('ok')\n", quick());
    EXPECT_EQ(after.verdict, Verdict::PASSED) << after.detail;
  }
  unsetenv("PREFOPT_SANDBOX_NAMESPACES");
}

TEST(SandboxTranscript, ToolRunnerShowsWhatAnInterpreterWould) {
  // The tool-call loop's runner: full isolation, stdout and stderr in order in
  // one stream, the program's own line numbers, a closing line for a stop.
  EXPECT_EQ(run_python_transcript("print(2+3)\n"), "5\n");
  EXPECT_EQ(run_python_transcript("import os\nprint(os.getuid())\n"), "65534\n");
  EXPECT_EQ(run_python_transcript("import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')\n"), "a\nb\nc\n");
  std::string tb = run_python_transcript("x = 1\nraise ValueError('boom')\n");
  EXPECT_NE(tb.find("line 2"), std::string::npos) << tb;
  EXPECT_NE(tb.find("ValueError: boom\n"), std::string::npos) << tb;
  EXPECT_EQ(run_python_transcript("import socket\ntry:\n  socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
                                  "  print('connected')\nexcept OSError:\n  print('blocked')\n"),
            "blocked\n");
  Limits l = quick();
  l.wall_seconds = 1;
  std::string t = run_python_transcript(
      "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('start', flush=True)\nwhile True: pass\n", l);
  EXPECT_EQ(t, "start\nTimeoutError: the program ran longer than 1 s\n");
  Limits cap = quick();
  cap.output_bytes = 1000;
  std::string big = run_python_transcript("print('x' * 100000)\n", cap);
  EXPECT_EQ(big, std::string(1000, 'x') + "\n...[output truncated]\n");
  RunResult crashed;
  crashed.verdict = Verdict::CRASHED;
  crashed.detail = "killed by signal SIGSEGV";
  crashed.stdout_text = "partial";
  EXPECT_EQ(transcript_text(crashed, quick()), "partial\nCrashed: killed by signal SIGSEGV\n");
  RunResult infra;
  infra.detail = "the sandbox worker died without a report";
  EXPECT_EQ(transcript_text(infra, quick()), "SandboxError: the sandbox worker died without a report\n");
  auto surv = run_survivors();
  EXPECT_TRUE(surv.empty()) << describe(surv);
}
