// Helpers for the sandbox tests: processes that survived a run (read from
// /proc, not pgrep), plain python3 runs without isolation for parity.
#pragma once
#include "common/run_cli.h"
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace prefopt::testing {

struct ProcInfo {
  int pid = 0, ppid = 0, uid = -1;
  std::string name;
};

inline std::vector<ProcInfo> list_processes() {
  std::vector<ProcInfo> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    if (!in) continue;
    ProcInfo p;
    p.pid = pid;
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Name:", 0) == 0) p.name = line.substr(6);
      if (line.rfind("PPid:", 0) == 0) p.ppid = std::atoi(line.c_str() + 5);
      if (line.rfind("Uid:", 0) == 0) p.uid = std::atoi(line.c_str() + 4);  // real uid
    }
    out.push_back(p);
  }
  closedir(d);
  return out;
}

// Descendants of this process that run as the sandbox's uids (65534 for the
// code, 65533 for run_tests' harness): processes of a run. The zygotes (our
// children, uid 0) are allowed to stay.
inline std::vector<ProcInfo> run_survivors() {
  auto all = list_processes();
  std::map<int, int> parent;
  for (auto& p : all) parent[p.pid] = p.ppid;
  const int self = getpid();
  std::vector<ProcInfo> out;
  for (auto& p : all) {
    bool desc = false;
    for (int q = p.ppid, hops = 0; q > 1 && hops < 64; q = parent.count(q) ? parent[q] : 0, ++hops)
      if (q == self) desc = true;
    if (desc && (p.uid == 65534 || p.uid == 65533)) out.push_back(p);
  }
  return out;
}

inline std::string describe(const std::vector<ProcInfo>& v) {
  std::string s;
  for (auto& p : v) s += std::to_string(p.pid) + "(" + p.name + ") ";
  return s;
}

// Python's json.dumps writes NaN / Infinity / -Infinity bare (MbppPlus.jsonl.gz
// does); JSON has no such tokens: turn them into null outside strings.
inline std::string python_json_to_json(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool in_str = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_str) {
      out += c;
      if (c == '\\' && i + 1 < s.size()) out += s[++i];
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    bool done = false;
    for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
      size_t n = std::char_traits<char>::length(tok);
      if (s.compare(i, n, tok) == 0) {
        out += "null";
        i += n - 1;
        done = true;
        break;
      }
    }
    if (!done) out += c;
  }
  return out;
}

// Runs /usr/bin/python3 on `program` with no isolation; returns stdout.
inline std::string plain_python(const std::string& program, int* rc = nullptr) {
  char path[] = "/tmp/prefopt_sbx_plain_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "";
  (void)!write(fd, program.data(), program.size());
  close(fd);
  std::string out = popen_read("/usr/bin/python3 -I -S " + std::string(path) + " 2>/dev/null", rc);
  unlink(path);
  return out;
}

}  // namespace prefopt::testing
