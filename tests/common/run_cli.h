// Test helper: runs the built `prefopt` executable the way a user would.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace prefopt::testing {

// The program as CMake built it (the prefopt target's file, build/prefopt).
inline std::string prefopt_exe() { return PREFOPT_EXE; }

// Runs a shell command; returns its stdout, *rc gets the exit code.
inline std::string popen_read(const std::string& cmd, int* rc = nullptr) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (rc) *rc = WEXITSTATUS(st);
  return out;
}

// Returns stdout (plus stderr when stderr_too); *rc gets the exit code.
inline std::string run_prefopt(const std::string& args, int* rc = nullptr, bool stderr_too = false) {
  return popen_read(prefopt_exe() + " " + args + (stderr_too ? " 2>&1" : " 2>/dev/null"), rc);
}

}  // namespace prefopt::testing
