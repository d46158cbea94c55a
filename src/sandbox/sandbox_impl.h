// prefopt sandbox internals (not a public header): the worker that owns one
// zygote, the cgroups of a worker, the seccomp filter, machine detection and
// the verdict rule. See sandbox.h for the public API.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/sandbox.h"

namespace prefopt::sandbox_detail {

extern const char* const kZygoteSource;  // zygote_py.cpp

// Where the cgroup hierarchies are, from /proc/self/mountinfo and
// /proc/self/cgroup (detect.cpp; a pure function of the two texts).
struct CgroupLayout {
  std::string kind;     // "v1", "v2", "hybrid" or "none"
  std::string summary;  // in words: "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)", ...
  std::vector<std::pair<std::string, std::string>> v1_dirs;  // controller -> the dir of our own cgroup
  std::string v2_mount;  // where cgroup2 is mounted ("" if not)
  std::string v2_dir;    // the dir of our own cgroup in it ("" if not seen)
  std::string v1_dir(const std::string& controller) const;
};
CgroupLayout cgroup_layout_from(const std::string& mountinfo, const std::string& proc_self_cgroup);

// What the machine allows (detect.cpp), probed once.
struct Caps {
  bool user_ns = false, pid_ns = false, net_ns = false, mount_ns = false, ipc_ns = false, uts_ns = false,
       cgroup_ns = false;
  bool root = false;              // euid 0 (can map uid 65534, can use cgroups)
  bool setuid_nobody = false;     // a child can become uid 65534
  bool seccomp = false;           // a filter can be installed
  bool cgroup_pids = false, cgroup_memory = false, cgroup_cpu = false;  // cgroup v1, usable
  bool bwrap = false;             // /usr/bin/bwrap exists (not used: see docs/sandbox.md)
  std::string python;             // /usr/bin/python3
  std::string cgroup_pids_base, cgroup_memory_base, cgroup_cpu_base;  // v1 dirs of our own cgroups ("" if none)
  std::string cgroup_hierarchy;   // "v1 (...)", "v2 (...)", "hybrid (...)" or "none mounted"
  std::string cgroup_kind;        // "v1", "v2", "hybrid" or "none"
  // cgroup v2: the dir under which the sandbox makes its subtree (our own
  // cgroup, or PREFOPT_CGROUP2_ROOT), the controllers it offers
  // (cgroup.controllers), those the sandbox got delegated to its subtree,
  // and why v2 is not usable ("" when it is).
  std::string cgroup2_base, cgroup2_available, cgroup2_enabled, cgroup2_problem;
  bool cgroup2_usable = false;
  std::string cgroup_backend;     // what the workers use: "v1", "v2" or "none" (rlimits only)
  std::string cgroup_backend_why; // why that one, in words
};
const Caps& caps();
// Which cgroup hierarchy a /proc/self/mountinfo text shows (exposed for tests).
std::string cgroup_hierarchy_from(const std::string& mountinfo);

// cgroup v2 delegation (cgroup.cpp). Under `base` (a dir of a cgroup2
// hierarchy): enable `want` (of "pids", "memory", "cpu") in base's
// cgroup.subtree_control, first moving this process into the leaf
// base/prefopt-<pid>-self when base holds processes (the "no internal
// processes" rule; the hierarchy's root is exempt), then make the subtree
// base/prefopt-<pid> with the same controllers enabled for its children.
// Returns the subtree's dir and sets *enabled to the controllers its
// children get; "" and *problem on failure. Idempotent per base.
std::string cgroup2_delegate(const std::string& base, const std::vector<std::string>& want, std::string* enabled,
                             std::string* problem);
// Removes subtrees (and -self leaves) under `base` left by prefopt processes
// that are gone; rmdir only, so a cgroup that still has processes stays.
void cgroup2_remove_stale(const std::string& base);
// The "oom_kill N" counter of a memory.events / memory.oom_control text (0 if absent),
// and the cpu.max text for a number of CPUs (0: "max 100000").
int64_t cgroup_counter(const std::string& text, const std::string& key);
std::string cgroup2_cpu_max(double cpus);

// A worker's cgroups, removed on destruction: cgroup v1 pids + memory + cpu
// (one dir per controller), or one cgroup v2 leaf under the delegated
// subtree with pids.max, memory.max (+ memory.swap.max 0), cpu.max.
class WorkerCgroup {
 public:
  static std::unique_ptr<WorkerCgroup> create(int index);  // nullptr when no cgroup is usable
  ~WorkerCgroup();
  void set_limits(int max_processes, int64_t memory_bytes, double cpus);
  int64_t oom_kills() const;     // the memory cgroup's oom_kill counter (0 without one)
  int64_t pids_current() const;  // processes in the pids cgroup now (-1 without one)
  int64_t cpu_throttled() const; // cpu.stat's nr_throttled (-1 without a cpu cgroup)
  bool add(pid_t pid);           // moves a process (the zygote) into the cgroups
  std::string describe() const;  // "v1:pids,memory,cpu", "v2:pids,memory,cpu", "v2:none"
  bool v2() const { return v2_; }
  const std::string& v2_leaf() const { return pids_dir_; }  // v2 only: the leaf's dir

 private:
  bool v2_ = false;
  std::string pids_dir_, mem_dir_, cpu_dir_;  // v2: all three the leaf
  int pids_fd_ = -1, mem_fd_ = -1, cpu_fd_ = -1;
  std::string v2_ctrls_;  // v2: the controllers the leaf has
  int last_nproc_ = -1;
  int64_t last_mem_ = -1;
  double last_cpus_ = -1;
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
