// Sandbox throughput: executions/s of a trivial passing
// program, all measured in one run with the same concurrency:
//   sandbox     SandboxPool: full per-run isolation, zygote forked per run
//   plain       /usr/bin/python3 -c PROGRAM per run, no isolation (posix_spawn)
//   plain -I -S the same with the cheapest interpreter start (no site)
//   bwrap       bubblewrap + python3 per run (the alternative design), isolated
// Prints runs/s, ms per run and the ratio sandbox / plain. The modes run in
// interleaved rounds so that load from other processes hits them alike.
// Then code + tests: run_tests (candidate and harness in two processes)
// against code and tests in one interpreter, on a trivial function or, with
// --humaneval FILE, on HumanEval's canonical solutions and tests.
// Usage: bench_sandbox [--runs N] [--workers W] [--humaneval HumanEval.jsonl.gz]
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/jsonl.h"
#include "core/log.h"
#include "sandbox/sandbox.h"

extern char** environ;

using namespace prefopt;

namespace {

const char* kProgram = "x = sum(range(10))\nassert x == 45\n";
const char* kCode = "def f(n):\n    return sum(range(n))\n";
const char* kTests = "assert f(10) == 45\nassert f(0) == 0\n";

// One subprocess: argv, stdout/stderr to /dev/null, wait; true when exit 0.
bool spawn_wait(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Runs `runs` calls of fn spread over `workers` threads; returns runs/s.
template <typename F>
double rate(int runs, int workers, F fn, int* failures) {
  std::atomic<int> next{0}, bad{0};
  double t0 = now_seconds();
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w)
    ts.emplace_back([&] {
      while (next.fetch_add(1) < runs)
        if (!fn()) bad++;
    });
  for (auto& t : ts) t.join();
  double dt = now_seconds() - t0;
  *failures = bad;
  return runs / dt;
}

// CPU time (ms) of this process's living children (the pool's zygotes) and
// of their reaped children (the runs): what the runs cost, whatever the load
// from other processes does to the wall clock.
double children_cpu_ms() {
  const long tick = sysconf(_SC_CLK_TCK);
  double total = 0;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const int pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      char path[64], buf[1024];
      std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
      FILE* f = std::fopen(path, "r");
      if (!f) continue;
      size_t n = std::fread(buf, 1, sizeof buf - 1, f);
      std::fclose(f);
      buf[n] = '\0';
      const char* rp = std::strrchr(buf, ')');
      if (!rp) continue;
      // after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
      char state;
      long ppid, skip, ut, st, cut, cst;
      if (std::sscanf(rp + 2, "%c %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld", &state, &ppid, &skip, &skip,
                      &skip, &skip, &skip, &skip, &skip, &skip, &skip, &ut, &st, &cut, &cst) != 15)
        continue;
      if (ppid == getpid()) total += 1000.0 * (ut + st + cut + cst) / tick;
    }
    closedir(d);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 200, workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string humaneval;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--humaneval")) humaneval = argv[i + 1];
  }
  std::printf("sandbox bench: %d runs per mode, %d concurrent, program: %s", runs, workers, "sum(range(10)) + assert\n");
  std::printf("isolation: %s\n", isolation_level().c_str());
  SandboxPool pool(workers);
  {
    std::vector<std::string> warm(workers * 2, kProgram);  // start the zygotes
    for (auto& r : pool.run_all(warm))
      if (r.verdict != Verdict::PASSED) {
        std::fprintf(stderr, "warm-up run not PASSED: %s %s\n", to_string(r.verdict), r.detail.c_str());
        return 1;
      }
  }
  // Interleaved rounds, so load from other processes hits every mode alike.
  const int rounds = 5;
  const int per = std::max(1, runs / rounds);
  const int bw_per = std::max(4, per / 4);
  const bool have_bwrap = access("/usr/bin/bwrap", X_OK) == 0;
  double t_sb = 0, t_plain = 0, t_fast = 0, t_bw = 0;
  int f_sb = 0, f_plain = 0, f_fast = 0, f_bw = 0, f;
  auto timed = [](auto fn) {
    double t0 = now_seconds();
    fn();
    return now_seconds() - t0;
  };
  std::vector<std::string> progs(per, kProgram);
  for (int r = 0; r < rounds; ++r) {
    t_sb += timed([&] {
      for (auto& res : pool.run_all(progs)) f_sb += res.verdict != Verdict::PASSED;
    });
    t_plain += per / rate(per, workers, [] { return spawn_wait({"/usr/bin/python3", "-c", kProgram}); }, &f);
    f_plain += f;
    t_fast += per / rate(per, workers, [] { return spawn_wait({"/usr/bin/python3", "-I", "-S", "-c", kProgram}); }, &f);
    f_fast += f;
    if (have_bwrap) {
      t_bw += bw_per / rate(bw_per, workers,
                            [] {
                              return spawn_wait({"/usr/bin/bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib",
                                                 "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin",
                                                 "/bin", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
                                                 "--unshare-all", "--die-with-parent", "--new-session", "--chdir",
                                                 "/tmp", "/usr/bin/python3", "-I", "-S", "-c", kProgram});
                            },
                            &f);
      f_bw += f;
    }
  }
  runs = per * rounds;
  const int bw_runs = bw_per * rounds;
  const double sandbox = runs / t_sb, plain = runs / t_plain, fast = runs / t_fast;
  const double bw = have_bwrap ? bw_runs / t_bw : 0;
  auto row = [&](const char* name, double r, int fails, int n) {
    std::printf("  %-34s %8.1f runs/s  %7.1f ms/run  failures %d/%d\n", name, r, 1000.0 * workers / r, fails, n);
  };
  row("sandbox (zygote, full isolation)", sandbox, f_sb, runs);
  row("plain python3 -c (no isolation)", plain, f_plain, runs);
  row("plain python3 -I -S -c", fast, f_fast, runs);
  if (bw > 0) row("bwrap + python3 -I -S per run", bw, f_bw, bw_runs);
  std::printf("ratio sandbox / plain python3:        %.2fx\n", sandbox / plain);
  std::printf("ratio sandbox / plain python3 -I -S:  %.2fx\n", sandbox / fast);
  if (bw > 0) std::printf("ratio sandbox / bwrap per run:        %.2fx\n", sandbox / bw);

  // Code + tests: run_tests (the candidate and the harness in two processes,
  // calls through the proxy) against the tests sharing the code's interpreter
  // (run_with_prelude: code then tests in one process, as run_tests was).
  std::vector<std::pair<std::string, std::string>> jobs;
  std::string set_name = "trivial";
  if (!humaneval.empty()) {
    for (auto& r : read_jsonl(humaneval))
      jobs.push_back({r["prompt"].get<std::string>() + r["canonical_solution"].get<std::string>(),
                      "\n" + r["test"].get<std::string>() + "\ncheck(" + r["entry_point"].get<std::string>() + ")\n"});
    set_name = humaneval;
  } else {
    for (int i = 0; i < per; ++i) jobs.push_back({kCode, kTests});
  }
  double t_two = 0, t_one = 0;
  int f_two = 0, f_one = 0;
  const Limits lim = pool.limits();
  auto run_jobs = [&](bool two) {
    std::atomic<size_t> next{0};
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (int w = 0; w < workers; ++w)
      ts.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < jobs.size();) {
          RunResult r = two ? pool.run_tests(jobs[i].first, jobs[i].second, lim)
                            : pool.run_with_prelude(jobs[i].first, jobs[i].second, lim);
          if (r.verdict != Verdict::PASSED) bad++;
        }
      });
    for (auto& t : ts) t.join();
    return static_cast<int>(bad);
  };
  const int trounds = humaneval.empty() ? rounds : 2;
  double c_two = 0, c_one = 0;
  for (int r = 0; r < trounds; ++r) {
    double c0 = children_cpu_ms();
    t_two += timed([&] { f_two += run_jobs(true); });
    double c1 = children_cpu_ms();
    t_one += timed([&] { f_one += run_jobs(false); });
    double c2 = children_cpu_ms();
    c_two += c1 - c0;
    c_one += c2 - c1;
  }
  const int tn = static_cast<int>(jobs.size()) * trounds;
  std::printf("code + tests (%s, %zu programs x %d rounds):\n", set_name.c_str(), jobs.size(), trounds);
  row("run_tests: candidate | harness", tn / t_two, f_two, tn);
  row("one interpreter (the former design)", tn / t_one, f_one, tn);
  std::printf("ratio time per program, two processes / one:  %.2fx\n", t_two / t_one);
  std::printf("CPU per program (zygotes and runs): two processes %.2f ms, one %.2f ms, ratio %.2fx\n", c_two / tn,
              c_one / tn, c_two / c_one);
  return f_sb || f_two || f_one ? 1 : 0;
}
