// Per-worker cgroups (v1 pids + memory): the worker's zygote is placed in
// them, so every run is born there; a fork/thread bomb hits pids.max and the whole tree (processes and the
// files it wrote to its tmpfs) is capped by memory.limit_in_bytes; an OOM
// kill shows up in memory.oom_control's oom_kill counter.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "sandbox/sandbox_impl.h"

namespace prefopt::sandbox_detail {

namespace {

bool write_text(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Cgroups left by a prefopt process that died without cleaning up (SIGKILL):
// empty once its zygotes are gone, so rmdir succeeds.
void remove_stale(const std::string& base) {
  DIR* d = opendir(base.c_str());
  if (!d) return;
  const std::string prefix = "prefopt-sandbox-";
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    long pid = std::atol(name.c_str() + prefix.size());
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) rmdir((base + "/" + name).c_str());
  }
  closedir(d);
}

std::string make_dir(const std::string& base, int index) {
  if (base.empty()) return "";
  if (index == 0) remove_stale(base);
  std::string dir = base + "/prefopt-sandbox-" + std::to_string(getpid()) + "-" + std::to_string(index);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return "";
  return dir;
}

}  // namespace

std::unique_ptr<WorkerCgroup> WorkerCgroup::create(int index) {
  const Caps& c = caps();
  std::unique_ptr<WorkerCgroup> g(new WorkerCgroup);
  g->pids_dir_ = make_dir(c.cgroup_pids_base, index);
  g->mem_dir_ = make_dir(c.cgroup_memory_base, index);
  if (!g->pids_dir_.empty()) g->pids_fd_ = open((g->pids_dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (!g->mem_dir_.empty()) g->mem_fd_ = open((g->mem_dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (g->pids_fd_ < 0 && g->mem_fd_ < 0) return nullptr;
  return g;
}

WorkerCgroup::~WorkerCgroup() {
  if (pids_fd_ >= 0) close(pids_fd_);
  if (mem_fd_ >= 0) close(mem_fd_);
  // Empty by now (the worker's zygote was killed and reaped first).
  if (!pids_dir_.empty()) rmdir(pids_dir_.c_str());
  if (!mem_dir_.empty()) rmdir(mem_dir_.c_str());
}

void WorkerCgroup::set_limits(int max_processes, int64_t memory_bytes) {
  if (pids_fd_ >= 0 && max_processes != last_nproc_) {
    if (write_text(pids_dir_ + "/pids.max", std::to_string(max_processes))) last_nproc_ = max_processes;
  }
  if (mem_fd_ >= 0 && memory_bytes != last_mem_) {
    if (write_text(mem_dir_ + "/memory.limit_in_bytes", std::to_string(memory_bytes))) last_mem_ = memory_bytes;
  }
}

bool WorkerCgroup::add(pid_t pid) {
  const std::string s = std::to_string(pid);
  bool ok = true;
  if (pids_fd_ >= 0) ok = ok && write(pids_fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  if (mem_fd_ >= 0) ok = ok && write(mem_fd_, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  return ok;
}

int64_t WorkerCgroup::oom_kills() const {
  if (mem_dir_.empty()) return 0;
  std::string s = read_text(mem_dir_ + "/memory.oom_control");
  size_t p = s.find("oom_kill ");
  return p == std::string::npos ? 0 : std::atoll(s.c_str() + p + 9);
}

int64_t WorkerCgroup::pids_current() const {
  if (pids_dir_.empty()) return -1;
  return std::atoll(read_text(pids_dir_ + "/pids.current").c_str());
}

std::string WorkerCgroup::describe() const {
  std::string s;
  if (pids_fd_ >= 0) s += "pids";
  if (mem_fd_ >= 0) s += s.empty() ? "memory" : ",memory";
  return s;
}

}  // namespace prefopt::sandbox_detail
