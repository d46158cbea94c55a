// prefopt sandbox internals (not a public header): the worker that owns one
// zygote, the cgroups of a worker, the seccomp filter, machine detection and
// the verdict rule. See sandbox.h for the public API.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace prefopt::sandbox_detail {

extern const char* const kZygoteSource;  // zygote_py.cpp

// What the machine allows (detect.cpp), probed once.
struct Caps {
  bool user_ns = false, pid_ns = false, net_ns = false, mount_ns = false, ipc_ns = false, uts_ns = false,
       cgroup_ns = false;
  bool root = false;              // euid 0 (can map uid 65534, can use cgroups)
  bool setuid_nobody = false;     // a child can become uid 65534
  bool seccomp = false;           // a filter can be installed
  bool cgroup_pids = false, cgroup_memory = false;
  bool bwrap = false;             // /usr/bin/bwrap exists (not used: see docs/sandbox.md)
  std::string python;             // /usr/bin/python3
  std::string cgroup_pids_base, cgroup_memory_base;  // v1 dirs of our own cgroups ("" if none)
  std::string cgroup_hierarchy;   // "v1 (...)", "v2 (...)", "hybrid (...)" or "none mounted"
};
const Caps& caps();
// Which cgroup hierarchy a /proc/self/mounts text shows (exposed for tests).
std::string cgroup_hierarchy_from(const std::string& mounts);

// The per-worker cgroups (cgroup v1 pids + memory), removed on destruction.
class WorkerCgroup {
 public:
  static std::unique_ptr<WorkerCgroup> create(int index);  // nullptr when no cgroup is usable
  ~WorkerCgroup();
  void set_limits(int max_processes, int64_t memory_bytes);
  int64_t oom_kills() const;     // the memory cgroup's oom_kill counter (0 without one)
  int64_t pids_current() const;  // processes in the pids cgroup now (-1 without one)
  bool add(pid_t pid);            // moves a process (the zygote) into both cgroups
  std::string describe() const;  // "pids,memory"

 private:
  std::string pids_dir_, mem_dir_;
  int pids_fd_ = -1, mem_fd_ = -1;
  int last_nproc_ = -1;
  int64_t last_mem_ = -1;
};

// The seccomp filter (a second line of defence) as raw sock_filter[] bytes,
// exported by libseccomp once; empty when libseccomp cannot build it.
const std::string& seccomp_bpf();
std::string seccomp_summary();

// Everything the verdict rule looks at.
struct RunFacts {
  bool killed_timeout = false, killed_output = false;
  bool zygote_lost = false;        // the worker died without reporting: infrastructure
  bool setup_failed = false;       // the run's own isolation setup failed
  bool have_status = false;
  int wait_status = 0;
  int64_t cpu_ms = 0;
  double cpu_limit_s = 0;
  bool secret_ok = false;
  std::string exception;           // uncaught exception type reported by the harness
  bool oom_killed = false;         // the memory cgroup killed something during the run
  // run_tests only: the candidate's own process (the harness's is wait_status).
  bool cand_have_status = false;
  int cand_wait_status = 0;
  int64_t cand_cpu_ms = 0;
  std::string candidate_lost;      // the harness lost the candidate (its process ended, protocol broken)
  std::string rejected;            // the candidate answered with something that is not plain data
};
// Fills verdict, exit_code, signal, detail, secret_ok.
void decide_verdict(const RunFacts& f, RunResult& r);

// One zygote and the thread-compatible state to talk to it. Not thread-safe:
// one run at a time (SandboxPool gives each worker its own thread).
class Worker {
 public:
  explicit Worker(int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // mode 'p': `code` is the whole program; 't': run_tests (the candidate
  // runs `code` in its own process, the harness runs `test_code`); 'u':
  // `code` then `test_code` in one process (run_with_prelude).
  // `names`: TestJob::entry_points (mode 't' only).
  RunResult run(const std::string& code, const std::string& test_code, char mode, const Limits& limits,
                const std::vector<std::string>& names = {});
  const std::string& isolation() const { return isolation_; }

 private:
  bool spawn(std::string* err);
  bool spawn_with(bool userns, std::string* err);
  void kill_zygote();
  int index_;
  pid_t zpid_ = -1;
  int ctl_ = -1;
  std::string ctl_buf_;
  std::unique_ptr<WorkerCgroup> cg_;
  std::string isolation_;
  std::string host_workdir_;  // degraded mode only: the private dir on the host's /tmp
  int64_t oom_seen_ = -1;     // the memory cgroup's oom_kill counter after the last run
};

// Random hex string from getrandom().
std::string random_hex(size_t bytes);

}  // namespace prefopt::sandbox_detail
