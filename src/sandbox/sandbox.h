// prefopt sandbox: run untrusted Python (Debian's /usr/bin/python3) in an
// isolated process tree and return a verdict as a value.
//
// Every run gets, where the machine allows it (see isolation_report()):
//   new user, pid, net, mount, ipc and uts namespaces (per worker; a new ipc
//   namespace per run, the pid namespace emptied after each); a read-only root that
//   shows only what python3 needs (/usr, /lib*, /bin, a few /etc files); a
//   private 64 MiB tmpfs as the working dir and the only writable place
//   (wiped after every run);
//   an empty network namespace; an unprivileged uid (65534); rlimits (CPU,
//   address space, file size, open files, processes, no core); pids, memory
//   and cpu cgroups (v1, or a delegated cgroup v2 subtree) where available; a
//   seccomp filter as a second line; stdin
//   is /dev/null; stdout/stderr drained continuously with per-stream caps; a
//   wall-clock limit that kills the whole process tree (the run's pid
//   namespace dies with its init).
// What is and is not isolated, in words: docs/sandbox.md.
//
// PASSED needs exit code 0 AND a per-run random secret that the harness
// writes to an inherited pipe only after the last line of the program (the
// tests) completed normally, so exit(0) / os._exit(0) before the asserts or
// exec'ing /bin/true cannot fake a pass. For run_tests the tests run in a
// harness process of their own (uid 65533, not dumpable) that alone holds
// that pipe; the code under test runs in the candidate process (uid 65534)
// and answers the harness's calls through a pipe as plain data (exact
// builtin types), so nothing the candidate does to its own interpreter,
// answers with or writes anywhere can make the tests pass. run_python (a
// whole program) has only the secret: see docs/sandbox.md. SANDBOX_ERROR is
// an infrastructure failure, never the model's fault.
//
// No torch. Thread-safe: run_python / run_tests may be called from many
// threads; SandboxPool runs executions concurrently.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace prefopt {

enum class Verdict { PASSED, FAILED, TIMEOUT, MEMORY_LIMIT, OUTPUT_LIMIT, CRASHED, SANDBOX_ERROR };
const char* to_string(Verdict v);                       // "PASSED", "FAILED", ...
std::optional<Verdict> parse_verdict(std::string_view s);
// SANDBOX_ERROR is the infrastructure's fault: leave it out of pass@k counts.
inline bool counts_against_model(Verdict v) { return v != Verdict::SANDBOX_ERROR; }

struct Limits {
  double wall_seconds = 10;                          // whole tree killed after this
  double cpu_seconds = 10;                           // RLIMIT_CPU (per process)
  int64_t memory_bytes = int64_t(1) << 30;           // RLIMIT_AS (+ memory cgroup where available)
  int64_t file_size_bytes = int64_t(16) << 20;       // RLIMIT_FSIZE (the tmpfs work dir holds 64 MiB)
  int64_t output_bytes = int64_t(64) << 10;          // per stream kept; the rest is drained, dropped, flagged
  int64_t output_kill_bytes = int64_t(8) << 20;      // a stream past this kills the run: OUTPUT_LIMIT
  int max_processes = 32;                            // RLIMIT_NPROC (unprivileged uid) + pids cgroup
  int open_files = 64;                               // RLIMIT_NOFILE
  double cpus = 1;                                   // CPU bandwidth of a worker's tree (cgroup cpu quota); 0: none
  // Truncation alone (output_bytes < total <= output_kill_bytes) does not
  // change the verdict: it only sets the *_truncated flags.
};

struct RunResult {
  Verdict verdict = Verdict::SANDBOX_ERROR;
  int exit_code = -1;       // exit status of the program's process; -1 when killed by a signal
  int signal = 0;           // terminating signal, 0 if none
  std::string stdout_text, stderr_text;      // at most Limits::output_bytes each
  bool stdout_truncated = false, stderr_truncated = false;
  double wall_seconds = 0;
  std::string isolation;    // the level reached for this run, e.g. "full" or "partial: no user ns, ..."
  std::string detail;       // why the verdict, in words ("secret missing after exit 0", ...)
  bool secret_ok = false;   // the harness epilogue ran and wrote the run's secret
};

// Adds a run's outcome to its input row, as eval-code writes it: verdict, passed,
// output (stdout + stderr), output_truncated, detail, isolation.
void add_result_fields(nlohmann::json& row, const RunResult& r);

// Runs `program` (the whole Python source) as one run. PASSED = the program
// ran to its last line without an uncaught exception and exited 0.
RunResult run_python(const std::string& program, const Limits& limits = {});

// Test harness: the candidate process executes `code` (solution.py) and then
// serves calls; the harness process executes `test_code` (tests.py) in fresh
// globals that hold a proxy for every callable of `code`, the modules it
// imported (by name, re-imported in the harness) and its plain-data globals.
// A call's arguments and result cross as plain data (None, bool, int, float,
// complex, str, bytes and list/tuple/dict/set/frozenset of them, checked with
// `type(x) is ...`; a subclass that keeps its builtin's comparison, and the
// stdlib's Counter/OrderedDict, cross as an exact copy of the builtin value;
// a re.Match crosses as its pattern, string and spans and is found again by
// the harness's own re). Any other result is FAILED ("not plain data"), never
// compared. An exception
// of the candidate reaches the tests as the same builtin exception type (a
// class of the same name derived from it) with its args. The candidate's
// process ending, SystemExit/KeyboardInterrupt in a call or a broken reply is
// FAILED (or TIMEOUT/CRASHED/MEMORY_LIMIT by how it ended), even when the
// tests catch the exception. A name of `code` that shadows a Python builtin
// reaches the tests only when listed in `entry_points`. The secret is written
// only by the harness, after test_code completed normally.
RunResult run_tests(const std::string& code, const std::string& test_code, const Limits& limits = {},
                    const std::vector<std::string>& entry_points = {});

// SandboxPool::run_with_prelude on the process-wide pool.
RunResult run_python_with_prelude(const std::string& prelude, const std::string& program, const Limits& limits = {});

// A tool-call loop's code runner (generate/tool_loop.h CodeRunner): runs
// `program` with full per-run isolation (the process-wide pool, as
// run_python) and returns what an interpreter session would show: stdout and
// stderr interleaved in one stream (fd 2 is a copy of fd 1), then
// "...[output truncated]" when output was dropped, then one line when the
// sandbox stopped the program: "TimeoutError: ...", "MemoryError: ..."
// (unless the output already says MemoryError), "OutputLimitError: ...",
// "Crashed: killed by signal SIG...", "SandboxError: ...".
std::string run_python_transcript(const std::string& program, const Limits& limits = {});
// The text run_python_transcript makes of one result (exposed for tests).
std::string transcript_text(const RunResult& r, const Limits& limits);

// What this machine allows, detected once (thread-safe) at first use:
// namespaces (user/pid/net/mount/ipc/uts), bubblewrap, seccomp, cgroup
// pids/memory/cpu (v1 or v2, and which hierarchy the host has), an
// unprivileged uid. Multi-line, human-readable.
std::string isolation_report();
// The same probe as one JSON object (`prefopt sandbox-info --json`).
std::string isolation_report_json();
// One-line summary of the level every run reaches ("full: user,pid,net,...").
std::string isolation_level();

struct TestJob {
  std::string code, test_code;
  // Names of `code` that the tests call (HumanEval's entry_point). Every
  // callable, module and plain-data global of `code` reaches the tests, except
  // a name that shadows a Python builtin (`abs`, `sorted`, `isinstance`...):
  // that one only when listed here, so a candidate cannot replace the builtins
  // the tests use to check it.
  std::vector<std::string> entry_points{};
};

// `workers` concurrent executions, each supervised by its own thread. Each
// worker keeps a pre-started Python interpreter (a zygote that has imported
// the harness) inside its own namespaces and forks it per run into a new ipc
// namespace, so a run costs a fork, not an interpreter start; after the run
// every other process of the worker's pid namespace is killed and /tmp wiped.
// Without namespaces the zygote starts without them ("degraded").
class SandboxPool {
 public:
  SandboxPool(int workers, Limits limits = {});
  ~SandboxPool();
  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  // Results in input order.
  std::vector<RunResult> run_all(const std::vector<std::string>& programs);
  std::vector<RunResult> run_tests_all(const std::vector<TestJob>& jobs);
  // One run with its own limits; thread-safe (many threads may submit at once).
  RunResult run(const std::string& program, const Limits& limits);
  RunResult run_tests(const std::string& code, const std::string& test_code, const Limits& limits,
                      const std::vector<std::string>& entry_points = {});
  // `prelude` then `program` in one interpreter, each compiled under its own
  // file name (prelude.py, program.py); judged like run_python.
  RunResult run_with_prelude(const std::string& prelude, const std::string& program, const Limits& limits);
  int workers() const;
  const Limits& limits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prefopt
