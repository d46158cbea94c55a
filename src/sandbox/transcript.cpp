// run_python_transcript: the sandbox as a tool-call loop's code runner
// (generate/tool_loop.h CodeRunner). The program runs like run_python, with
// full per-run isolation, and comes back as the text an interpreter session
// would show: stdout and stderr in one stream, in order (fd 2 is made a copy
// of fd 1 first, as `2>&1`), and one closing line when the sandbox stopped the
// program (timeout, memory, output flood, a crash, an infrastructure error).
#include <cstdio>
#include <string>

#include "sandbox/sandbox.h"

namespace prefopt {

namespace {

// Runs as the prelude, so the program keeps its own line numbers (it is
// compiled on its own).
const char* const kStderrToStdout = "import os as _po_os\n_po_os.dup2(1, 2)\ndel _po_os\n";

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace

std::string transcript_text(const RunResult& r, const Limits& limits) {
  std::string out = r.stdout_text + r.stderr_text;  // stderr is empty unless the program reopened fd 2
  auto line = [&out](const std::string& s) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += s + "\n";
  };
  if (r.stdout_truncated || r.stderr_truncated || r.verdict == Verdict::OUTPUT_LIMIT) line("...[output truncated]");
  switch (r.verdict) {
    case Verdict::PASSED:
    case Verdict::FAILED:  // the traceback is already in the output
      break;
    case Verdict::TIMEOUT:
      line("TimeoutError: the program ran longer than " +
           seconds_text(r.detail.rfind("CPU", 0) == 0 ? limits.cpu_seconds : limits.wall_seconds) + " s");
      break;
    case Verdict::MEMORY_LIMIT:
      if (out.find("MemoryError") == std::string::npos)
        line("MemoryError: the program went over its memory limit (" + std::to_string(limits.memory_bytes >> 20) +
             " MiB)");
      break;
    case Verdict::OUTPUT_LIMIT:
      line("OutputLimitError: the program printed more than " + std::to_string(limits.output_kill_bytes >> 20) +
           " MiB and was stopped");
      break;
    case Verdict::CRASHED:
      line("Crashed: " + r.detail);
      break;
    case Verdict::SANDBOX_ERROR:
      line("SandboxError: " + r.detail);
      break;
  }
  return out;
}

std::string run_python_transcript(const std::string& program, const Limits& limits) {
  return transcript_text(run_python_with_prelude(kStderrToStdout, program, limits), limits);
}

}  // namespace prefopt
