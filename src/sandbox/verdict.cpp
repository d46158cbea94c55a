// Verdict names (the strings used in eval-code's JSONL and the docs) and the
// rule that turns what a run did into a verdict (docs/sandbox.md, "Verdicts").
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <array>
#include <string>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox_impl.h"

namespace prefopt {

namespace {
constexpr std::array<const char*, 7> kVerdictNames = {"PASSED",       "FAILED",  "TIMEOUT",      "MEMORY_LIMIT",
                                                      "OUTPUT_LIMIT", "CRASHED", "SANDBOX_ERROR"};
}

const char* to_string(Verdict v) { return kVerdictNames[static_cast<size_t>(v)]; }

std::optional<Verdict> parse_verdict(std::string_view s) {
  for (size_t i = 0; i < kVerdictNames.size(); ++i)
    if (s == kVerdictNames[i]) return static_cast<Verdict>(i);
  return std::nullopt;
}

void add_result_fields(nlohmann::json& row, const RunResult& r) {
  row["verdict"] = to_string(r.verdict);
  row["passed"] = r.verdict == Verdict::PASSED;
  row["output"] = r.stdout_text + r.stderr_text;
  row["output_truncated"] = r.stdout_truncated || r.stderr_truncated;
  row["detail"] = r.detail;
  row["isolation"] = r.isolation;
}

}  // namespace prefopt

// ---- the verdict rule ----
namespace prefopt::sandbox_detail {

void decide_verdict(const RunFacts& f, RunResult& r) {
  r.secret_ok = f.secret_ok;
  if (f.have_status) {
    if (WIFEXITED(f.wait_status)) {
      r.exit_code = WEXITSTATUS(f.wait_status);
      r.signal = 0;
    } else if (WIFSIGNALED(f.wait_status)) {
      r.exit_code = -1;
      r.signal = WTERMSIG(f.wait_status);
    }
  }
  auto set = [&](Verdict v, std::string why) {
    r.verdict = v;
    r.detail = std::move(why);
  };
  if (f.killed_timeout) return set(Verdict::TIMEOUT, "wall-clock limit reached; the whole process tree was killed");
  if (f.killed_output)
    return set(Verdict::OUTPUT_LIMIT, "output beyond output_kill_bytes; the whole process tree was killed");
  if (f.zygote_lost || !f.have_status) return set(Verdict::SANDBOX_ERROR, "the sandbox worker died without a report");
  if (f.setup_failed) return set(Verdict::SANDBOX_ERROR, "the run's isolation setup failed (see stderr)");
  if (r.signal == 0 && r.exit_code == 0 && f.secret_ok) return set(Verdict::PASSED, "ran to the end, exit 0");
  if (f.oom_killed) return set(Verdict::MEMORY_LIMIT, "the memory cgroup's OOM killer killed a process of the run");
  if (f.exception == "MemoryError") return set(Verdict::MEMORY_LIMIT, "MemoryError (address-space limit)");
  auto by_signal = [&](int sig, int64_t cpu_ms, const char* who) {
    const bool cpu_out = sig == SIGXCPU || (sig == SIGKILL && cpu_ms + 50 >= f.cpu_limit_s * 1000);
    if (cpu_out) return set(Verdict::TIMEOUT, std::string("CPU-time limit reached") + who);
    const char* name = sigabbrev_np(sig);
    return set(Verdict::CRASHED,
               std::string("killed by signal SIG") + (name ? name : std::to_string(sig).c_str()) + who);
  };
  if (r.signal != 0) return by_signal(r.signal, f.cpu_ms, "");
  if (!f.rejected.empty()) return set(Verdict::FAILED, "not plain data from the candidate: " + f.rejected);
  if (!f.candidate_lost.empty()) {
    if (f.cand_have_status && WIFSIGNALED(f.cand_wait_status) && WTERMSIG(f.cand_wait_status) != 0)
      return by_signal(WTERMSIG(f.cand_wait_status), f.cand_cpu_ms, " (the candidate's process)");
    std::string why = "the candidate was lost during the tests: " + f.candidate_lost;
    if (f.cand_have_status && WIFEXITED(f.cand_wait_status))
      why += " (its exit code " + std::to_string(WEXITSTATUS(f.cand_wait_status)) + ")";
    return set(Verdict::FAILED, why);
  }
  if (!f.exception.empty()) return set(Verdict::FAILED, "uncaught " + f.exception);
  if (r.exit_code == 0) return set(Verdict::FAILED, "exited 0 before the program/tests completed (no secret)");
  if (f.secret_ok) return set(Verdict::FAILED, "tests completed but the exit code is " + std::to_string(r.exit_code));
  return set(Verdict::FAILED, "exit code " + std::to_string(r.exit_code));
}


}  // namespace prefopt::sandbox_detail
