// Per-worker cgroups: the worker's zygote is placed in them, so every run is
// born there; a fork/thread bomb hits pids.max, the whole tree (processes and
// the files it wrote to its tmpfs) is capped by the memory limit, its CPU
// bandwidth by the cpu quota, and an OOM kill shows up in the oom_kill counter.
//
// Two backends, chosen once by detect.cpp (Caps::cgroup_backend):
//   v1  one cgroup per controller under our own v1 cgroups (pids.max,
//       memory.limit_in_bytes, cpu.cfs_quota_us; memory.oom_control);
//   v2  one leaf per worker, base/prefopt-<pid>/w<index>, in a subtree of the
//       unified hierarchy delegated to us (cgroup2_delegate): pids.max,
//       memory.max, memory.swap.max 0, cpu.max; memory.events.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "sandbox/sandbox_impl.h"

namespace prefopt::sandbox_detail {

namespace {

bool write_text(const std::string& path, const std::string& text, int* err = nullptr) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return false;
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (!ok && err) *err = errno;
  close(fd);
  return ok;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

bool has_word(const std::string& list, const std::string& w) {
  std::istringstream in(list);
  for (std::string x; in >> x;)
    if (x == w) return true;
  return false;
}

// The pid in a name "prefopt-<pid>..." or "prefopt-sandbox-<pid>-..." (0 if none).
long pid_of(const std::string& name) {
  for (const char* prefix : {"prefopt-sandbox-", "prefopt-"}) {
    const size_t n = std::strlen(prefix);
    if (name.compare(0, n, prefix) == 0 && name.size() > n && std::isdigit(static_cast<unsigned char>(name[n])))
      return std::atol(name.c_str() + n);
  }
  return 0;
}

bool dead(long pid) { return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// Cgroups left by a prefopt process that died without cleaning up (SIGKILL):
// empty once its zygotes are gone, so rmdir succeeds (children first).
void remove_stale(const std::string& base) {
  DIR* d = opendir(base.c_str());
  if (!d) return;
  std::vector<std::string> gone;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (dead(pid_of(name))) gone.push_back(base + "/" + name);
  }
  closedir(d);
  for (const std::string& dir : gone) {
    if (DIR* c = opendir(dir.c_str())) {
      std::vector<std::string> kids;
      while (dirent* e = readdir(c))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') kids.push_back(dir + "/" + e->d_name);
      closedir(c);
      for (const std::string& k : kids) rmdir(k.c_str());
    }
    rmdir(dir.c_str());
  }
}

std::string make_dir(const std::string& base, int index) {
  if (base.empty()) return "";
  if (index == 0) remove_stale(base);
  std::string dir = base + "/prefopt-sandbox-" + std::to_string(getpid()) + "-" + std::to_string(index);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return "";
  return dir;
}

// The v2 subtree of this process (made once, shared by the workers).
struct V2Tree {
  std::mutex mu;
  std::string base, dir, enabled, problem;
  int users = 0;
};
V2Tree& v2_tree() {
  static V2Tree t;
  return t;
}

// A controller that a cgroup v1 hierarchy holds (/proc/cgroups: its
// hierarchy id is not 0) is not available to cgroup2.
bool held_by_v1(const std::string& controller) {
  std::istringstream in(read_text("/proc/cgroups"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string name;
    int hierarchy = 0;
    if (f >> name >> hierarchy && name == controller) return hierarchy != 0;
  }
  return false;
}

}  // namespace

int64_t cgroup_counter(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, key.size() + 1, key + " ") == 0) return std::atoll(line.c_str() + key.size() + 1);
  return 0;
}

std::string cgroup2_cpu_max(double cpus) {
  constexpr long kPeriod = 100000;
  if (!(cpus > 0)) return "max " + std::to_string(kPeriod);
  const long quota = std::max(1000L, std::lround(cpus * kPeriod));  // the kernel's floor is 1 ms
  return std::to_string(quota) + " " + std::to_string(kPeriod);
}

void cgroup2_remove_stale(const std::string& base) { remove_stale(base); }

std::string cgroup2_delegate(const std::string& base, const std::vector<std::string>& want, std::string* enabled,
                             std::string* problem) {
  const std::string me = std::to_string(getpid());
  const std::string dir = base + "/prefopt-" + me;
  const std::string available = read_text(base + "/cgroup.controllers");
  if (!exists(base + "/cgroup.procs")) {
    *problem = base + " is not a cgroup v2 directory";
    return "";
  }
  remove_stale(base);
  // Enable in base what it offers and is not enabled yet.
  std::string add;
  for (const std::string& c : want)
    if (has_word(available, c) && !has_word(read_text(base + "/cgroup.subtree_control"), c)) add += " +" + c;
  if (!add.empty()) {
    int err = 0;
    if (!write_text(base + "/cgroup.subtree_control", add.substr(1), &err) && err == EBUSY) {
      // "No internal processes": base (not the root) holds processes, this
      // one among them. Move this process into a leaf of its own and retry.
      const std::string self = base + "/prefopt-" + me + "-self";
      if ((mkdir(self.c_str(), 0755) == 0 || errno == EEXIST) && write_text(self + "/cgroup.procs", me))
        write_text(base + "/cgroup.subtree_control", add.substr(1), &err);
    }
  }
  const std::string on = read_text(base + "/cgroup.subtree_control");
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *problem = "cannot make " + dir + ": " + std::strerror(errno);
    return "";
  }
  std::string got;
  for (const std::string& c : want) {
    if (!has_word(on, c)) continue;
    if (write_text(dir + "/cgroup.subtree_control", "+" + c)) got += (got.empty() ? "" : " ") + c;
  }
  *enabled = got;
  std::string missing;
  for (const std::string& c : want)
    if (!has_word(got, c))
      missing += (missing.empty() ? "" : ", ") + c +
                 (has_word(available, c) ? " (not delegated: " + base + " still holds other processes)"
                                         : held_by_v1(c) ? " (not offered here: a cgroup v1 hierarchy holds it)"
                                                         : " (not offered here)");
  *problem = missing.empty() ? "" : "controllers missing: " + missing;
  return dir;
}

std::unique_ptr<WorkerCgroup> WorkerCgroup::create(int index) {
  const Caps& c = caps();
  std::unique_ptr<WorkerCgroup> g(new WorkerCgroup);
  if (c.cgroup_backend == "v2") {
    V2Tree& t = v2_tree();
    std::lock_guard<std::mutex> lk(t.mu);
    if (t.dir.empty() || t.base != c.cgroup2_base) {
      t.base = c.cgroup2_base;
      t.dir = cgroup2_delegate(t.base, {"pids", "memory", "cpu"}, &t.enabled, &t.problem);
    }
    if (t.dir.empty()) return nullptr;
    const std::string leaf = t.dir + "/w" + std::to_string(index);
    if (mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) return nullptr;
    g->v2_ = true;
    g->pids_dir_ = g->mem_dir_ = g->cpu_dir_ = leaf;
    g->v2_ctrls_ = t.enabled;
    g->pids_fd_ = open((leaf + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (g->pids_fd_ < 0) {
      rmdir(leaf.c_str());
      return nullptr;
    }
    ++t.users;
    return g;
  }
  if (c.cgroup_backend != "v1") return nullptr;
  g->pids_dir_ = make_dir(c.cgroup_pids_base, index);
  g->mem_dir_ = make_dir(c.cgroup_memory_base, index);
  g->cpu_dir_ = make_dir(c.cgroup_cpu_base, index);
  if (!g->pids_dir_.empty()) g->pids_fd_ = open((g->pids_dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (!g->mem_dir_.empty()) g->mem_fd_ = open((g->mem_dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (!g->cpu_dir_.empty()) g->cpu_fd_ = open((g->cpu_dir_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (g->pids_fd_ < 0 && g->mem_fd_ < 0 && g->cpu_fd_ < 0) return nullptr;
  return g;
}

WorkerCgroup::~WorkerCgroup() {
  for (int fd : {pids_fd_, mem_fd_, cpu_fd_})
    if (fd >= 0) close(fd);
  // Empty by now (the worker's zygote was killed and reaped first).
  if (v2_) {
    rmdir(pids_dir_.c_str());
    V2Tree& t = v2_tree();
    std::lock_guard<std::mutex> lk(t.mu);
    if (--t.users == 0 && rmdir(t.dir.c_str()) == 0) t.dir.clear();
    return;
  }
  for (const std::string* d : {&pids_dir_, &mem_dir_, &cpu_dir_})
    if (!d->empty()) rmdir(d->c_str());
}

void WorkerCgroup::set_limits(int max_processes, int64_t memory_bytes, double cpus) {
  const bool pids = v2_ ? has_word(v2_ctrls_, "pids") : pids_fd_ >= 0;
  const bool mem = v2_ ? has_word(v2_ctrls_, "memory") : mem_fd_ >= 0;
  const bool cpu = v2_ ? has_word(v2_ctrls_, "cpu") : cpu_fd_ >= 0;
  if (pids && max_processes != last_nproc_) {
    if (write_text(pids_dir_ + "/pids.max", std::to_string(max_processes))) last_nproc_ = max_processes;
  }
  if (mem && memory_bytes != last_mem_) {
    bool ok;
    if (v2_) {
      ok = write_text(mem_dir_ + "/memory.max", std::to_string(memory_bytes));
      // Swap would let the tree hold more than memory.max.
      if (exists(mem_dir_ + "/memory.swap.max")) write_text(mem_dir_ + "/memory.swap.max", "0");
    } else {
      ok = write_text(mem_dir_ + "/memory.limit_in_bytes", std::to_string(memory_bytes));
    }
    if (ok) last_mem_ = memory_bytes;
  }
  if (cpu && cpus != last_cpus_) {
    bool ok;
    if (v2_) {
      ok = write_text(cpu_dir_ + "/cpu.max", cgroup2_cpu_max(cpus));
    } else {
      std::string q = cgroup2_cpu_max(cpus);
      ok = write_text(cpu_dir_ + "/cpu.cfs_period_us", q.substr(q.find(' ') + 1)) &&
           write_text(cpu_dir_ + "/cpu.cfs_quota_us", q.rfind("max", 0) == 0 ? "-1" : q.substr(0, q.find(' ')));
    }
    if (ok) last_cpus_ = cpus;
  }
}

bool WorkerCgroup::add(pid_t pid) {
  const std::string s = std::to_string(pid);
  bool ok = true;
  for (int fd : {pids_fd_, mem_fd_, cpu_fd_})
    if (fd >= 0) ok = ok && write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  return ok;
}

int64_t WorkerCgroup::oom_kills() const {
  if (v2_) return has_word(v2_ctrls_, "memory") ? cgroup_counter(read_text(mem_dir_ + "/memory.events"), "oom_kill") : 0;
  if (mem_dir_.empty()) return 0;
  return cgroup_counter(read_text(mem_dir_ + "/memory.oom_control"), "oom_kill");
}

int64_t WorkerCgroup::pids_current() const {
  if (pids_dir_.empty() || (v2_ && !has_word(v2_ctrls_, "pids"))) return -1;
  return std::atoll(read_text(pids_dir_ + "/pids.current").c_str());
}

int64_t WorkerCgroup::cpu_throttled() const {
  if (cpu_dir_.empty() || (v2_ && !has_word(v2_ctrls_, "cpu"))) return -1;
  return cgroup_counter(read_text(cpu_dir_ + "/cpu.stat"), "nr_throttled");
}

std::string WorkerCgroup::describe() const {
  std::string s;
  if (v2_) {
    for (const char* c : {"pids", "memory", "cpu"})
      if (has_word(v2_ctrls_, c)) s += (s.empty() ? "" : ",") + std::string(c);
    return "v2:" + (s.empty() ? std::string("none") : s);
  }
  if (pids_fd_ >= 0) s += "pids";
  if (mem_fd_ >= 0) s += s.empty() ? "memory" : ",memory";
  if (cpu_fd_ >= 0) s += s.empty() ? "cpu" : ",cpu";
  return "v1:" + s;
}

}  // namespace prefopt::sandbox_detail
