// What this machine allows, probed once: namespaces (a child unshare()s each
// kind), uid 65534, seccomp, cgroup v1 pids/memory (a probe cgroup is made
// and removed), which cgroup hierarchy is mounted (v1, v2 or hybrid, from
// /proc/self/mounts), bubblewrap. isolation_report() prints it.
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "sandbox/sandbox_impl.h"

namespace prefopt::sandbox_detail {

namespace {

// Runs fn in a forked child; true when it returns true there.
template <typename F>
bool in_child(F fn) {
  pid_t p = fork();
  if (p < 0) return false;
  if (p == 0) _exit(fn() ? 0 : 1);
  int st = 0;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool can_unshare(int flag) {
  return in_child([flag] { return unshare(flag) == 0; });
}

bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// cgroup v1: the dir of our own cgroup for `controller`, if we can make a child there.
std::string cgroup_v1_base(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = "," + line.substr(a + 1, b - a - 1) + ",";
    if (ctrls.find("," + controller + ",") == std::string::npos) continue;
    std::string path = line.substr(b + 1);
    std::string dir = "/sys/fs/cgroup/" + controller + (path == "/" ? "" : path);
    if (!is_dir(dir)) return "";
    std::string probe = dir + "/prefopt-probe-" + std::to_string(getpid());
    if (mkdir(probe.c_str(), 0755) != 0) return "";
    rmdir(probe.c_str());
    return dir;
  }
  return "";
}

}  // namespace

std::string cgroup_hierarchy_from(const std::string& mounts) {
  // /proc/self/mounts: "<source> <mount point> <fs type> <options> 0 0".
  bool v1 = false, v2_root = false;
  std::string v2_at;
  std::istringstream in(mounts);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string src, dir, type;
    if (!(f >> src >> dir >> type)) continue;
    if (type == "cgroup" && dir.rfind("/sys/fs/cgroup/", 0) == 0) v1 = true;
    if (type == "cgroup2") {
      if (dir == "/sys/fs/cgroup")
        v2_root = true;
      else if (v2_at.empty())
        v2_at = dir;
    }
  }
  if (v2_root && !v1) return "v2 (unified hierarchy at /sys/fs/cgroup; the v1 pids/memory cgroups are not used)";
  if (v2_root) return "hybrid (v2 at /sys/fs/cgroup, v1 controllers below it)";
  if (v1 && !v2_at.empty()) return "hybrid (v1 controllers, v2 at " + v2_at + ")";
  if (v1) return "v1 (one hierarchy per controller under /sys/fs/cgroup)";
  if (!v2_at.empty()) return "v2 (unified hierarchy at " + v2_at + ")";
  return "none mounted";
}

namespace {

Caps probe() {
  Caps c;
  c.root = geteuid() == 0;
  c.user_ns = can_unshare(CLONE_NEWUSER);
  // As root the other kinds need no user namespace; otherwise probe them inside one.
  int base = c.root ? 0 : CLONE_NEWUSER;
  c.pid_ns = can_unshare(base | CLONE_NEWPID);
  c.net_ns = can_unshare(base | CLONE_NEWNET);
  c.mount_ns = can_unshare(base | CLONE_NEWNS);
  c.ipc_ns = can_unshare(base | CLONE_NEWIPC);
  c.uts_ns = can_unshare(base | CLONE_NEWUTS);
  c.cgroup_ns = can_unshare(base | CLONE_NEWCGROUP);
  c.setuid_nobody = in_child([] { return setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0; });
  c.seccomp = !seccomp_bpf().empty() && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  if (c.root) {
    c.cgroup_pids_base = cgroup_v1_base("pids");
    c.cgroup_memory_base = cgroup_v1_base("memory");
  }
  c.cgroup_pids = !c.cgroup_pids_base.empty();
  c.cgroup_memory = !c.cgroup_memory_base.empty();
  {
    std::ifstream in("/proc/self/mounts");
    std::stringstream ss;
    ss << in.rdbuf();
    c.cgroup_hierarchy = cgroup_hierarchy_from(ss.str());
  }
  c.bwrap = access("/usr/bin/bwrap", X_OK) == 0;
  c.python = "/usr/bin/python3";
  return c;
}

const char* yes(bool b) { return b ? "yes" : "NO"; }

}  // namespace

const Caps& caps() {
  static std::once_flag once;
  static Caps c;
  std::call_once(once, [] { c = probe(); });
  return c;
}

}  // namespace prefopt::sandbox_detail

namespace prefopt {

std::string isolation_report() {
  using namespace sandbox_detail;
  const Caps& c = caps();
  std::ostringstream o;
  o << "sandbox isolation on this machine (probed at start)\n"
    << "  running as root:            " << yes(c.root) << "\n"
    << "  user namespace:             " << yes(c.user_ns) << "\n"
    << "  pid namespace:              " << yes(c.pid_ns) << "\n"
    << "  net namespace:              " << yes(c.net_ns) << "\n"
    << "  mount namespace:            " << yes(c.mount_ns) << "\n"
    << "  ipc namespace:              " << yes(c.ipc_ns) << "\n"
    << "  uts namespace:              " << yes(c.uts_ns) << "\n"
    << "  cgroup namespace:           " << yes(c.cgroup_ns) << "\n"
    << "  unprivileged uid 65534:     "
    << (c.root ? yes(c.setuid_nobody) : "NO (not root: runs are the invoking user, every capability dropped)") << "\n"
    << "  seccomp filter:             " << yes(c.seccomp) << " (" << seccomp_summary() << ")\n"
    << "  cgroup hierarchy:           " << c.cgroup_hierarchy << "\n"
    << "  cgroup v1 pids:             " << yes(c.cgroup_pids) << (c.cgroup_pids ? " " + c.cgroup_pids_base : "") << "\n"
    << "  cgroup v1 memory:           " << yes(c.cgroup_memory) << (c.cgroup_memory ? " " + c.cgroup_memory_base : "")
    << "\n"
    << "  bubblewrap:                 " << yes(c.bwrap) << " (not used: namespaces are set up directly)\n"
    << "  python:                     " << c.python << (access(c.python.c_str(), X_OK) == 0 ? "" : " (MISSING)")
    << "\n"
    << "  level every run reaches:    " << isolation_level() << "\n";
  return o.str();
}

std::string isolation_level() {
  using namespace sandbox_detail;
  const Caps& c = caps();
  // As Worker::spawn decides: the namespaces are used only all together, and
  // PREFOPT_SANDBOX_NAMESPACES=0 turns them off.
  const char* env = std::getenv("PREFOPT_SANDBOX_NAMESPACES");
  const bool full_ns = !(env && std::string(env) == "0") && c.pid_ns && c.net_ns && c.mount_ns && c.ipc_ns && c.uts_ns;
  const bool userns = full_ns && c.user_ns;
  std::string ns;
  auto add = [&](bool b, const char* n) {
    if (b) ns += (ns.empty() ? "" : ",") + std::string(n);
  };
  add(userns, "user");
  for (const char* n : {"pid", "net", "mount", "ipc", "uts"}) add(full_ns, n);
  add(full_ns && c.cgroup_ns, "cgroup");
  std::string cg;
  if (c.cgroup_pids) cg += "pids";
  if (c.cgroup_memory) cg += cg.empty() ? "memory" : ",memory";
  std::string s = (userns && c.seccomp) ? "full" : (full_ns ? "partial" : "degraded");
  s += " ns=" + (ns.empty() ? std::string("none") : ns);
  // The run's uid: 65534 as root; else root of the worker's user namespace
  // (the invoking user outside, no capabilities), or the invoking user itself.
  const long uid = c.root ? 65534L : (userns ? 0L : static_cast<long>(geteuid()));
  s += " uid=" + std::to_string(uid) + (full_ns ? " rootfs=ro tmpfs-workdir" : " rootfs=host host-workdir");
  s += std::string(" seccomp=") + (c.seccomp ? "on" : "off");
  s += " cgroup=" + (cg.empty() ? std::string("none") : cg);
  return s;
}

}  // namespace prefopt
