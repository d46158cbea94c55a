// What this machine allows, probed once: namespaces (a child unshare()s each
// kind), uid 65534, seccomp, which cgroup hierarchy the host has (v1, v2,
// hybrid or none, from /proc/self/mountinfo and /proc/self/cgroup), the v1
// pids/memory/cpu cgroups (a probe cgroup is made and removed), a cgroup v2
// subtree we can delegate to ourselves, which of the two the workers use, and
// bubblewrap. isolation_report() prints it, isolation_report_json() as JSON.
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

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

bool can_mkdir_in(const std::string& dir) {
  if (!is_dir(dir)) return false;
  std::string probe = dir + "/prefopt-probe-" + std::to_string(getpid());
  if (mkdir(probe.c_str(), 0755) != 0) return false;
  rmdir(probe.c_str());
  return true;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// mountinfo escapes blanks in paths as \040 (octal).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() + 1 && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The dir of cgroup `path` (as /proc/self/cgroup names it) in a hierarchy
// mounted at `mnt` whose mount shows the hierarchy's `root`; "" if outside it.
std::string dir_in_mount(const std::string& mnt, const std::string& root, const std::string& path) {
  if (root == "/") return path == "/" ? mnt : mnt + path;
  if (path == root) return mnt;
  if (path.compare(0, root.size() + 1, root + "/") == 0) return mnt + path.substr(root.size());
  return "";
}

const char* const kV1Controllers[] = {"cpu",  "cpuacct",   "cpuset",  "memory", "devices", "freezer", "net_cls",
                                      "blkio", "perf_event", "net_prio", "hugetlb", "pids",    "rdma",    "misc"};

}  // namespace

std::string CgroupLayout::v1_dir(const std::string& controller) const {
  for (const auto& [c, d] : v1_dirs)
    if (c == controller) return d;
  return "";
}

CgroupLayout cgroup_layout_from(const std::string& mountinfo, const std::string& proc_self_cgroup) {
  // /proc/self/cgroup: "<id>:<controllers>:<path>"; id 0 with no controllers is v2.
  std::vector<std::pair<std::string, std::string>> paths;  // "c1,c2" (or "" for v2) -> path
  {
    std::istringstream in(proc_self_cgroup);
    for (std::string line; std::getline(in, line);) {
      size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      paths.push_back({line.substr(a + 1, b - a - 1), line.substr(b + 1)});
    }
  }
  auto path_of = [&](const std::string& controller) -> std::string {
    for (const auto& [ctrls, p] : paths)
      if (("," + ctrls + ",").find("," + controller + ",") != std::string::npos) return p;
    return "";
  };
  CgroupLayout L;
  bool v1 = false, v2_root = false;
  std::string v2_at, v2_at_root;
  // mountinfo: "<id> <parent> <dev> <root> <mount point> <opts> [optional...] - <type> <source> <super opts>".
  std::istringstream in(mountinfo);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::vector<std::string> w;
    for (std::string x; f >> x;) w.push_back(x);
    size_t dash = 0;
    while (dash < w.size() && w[dash] != "-") ++dash;
    if (dash < 5 || dash + 2 >= w.size() + 1) continue;
    const std::string root = unescape(w[3]), mnt = unescape(w[4]), type = w[dash + 1];
    const std::string super = dash + 3 < w.size() ? w[dash + 3] : "";
    if (type == "cgroup" && mnt.rfind("/sys/fs/cgroup/", 0) == 0) {
      v1 = true;
      for (const char* c : kV1Controllers) {
        if (("," + super + ",").find(std::string(",") + c + ",") == std::string::npos) continue;
        const std::string p = path_of(c);
        if (!p.empty() && L.v1_dir(c).empty()) L.v1_dirs.push_back({c, dir_in_mount(mnt, root, p)});
      }
    }
    if (type == "cgroup2") {
      // The system's mount wins: /sys/fs/cgroup, then one below it, then the first elsewhere.
      const bool under = mnt.rfind("/sys/fs/cgroup/", 0) == 0;
      if (mnt == "/sys/fs/cgroup") {
        v2_root = true;
        v2_at = mnt, v2_at_root = root;
      } else if (!v2_root && (v2_at.empty() || (under && v2_at.rfind("/sys/fs/cgroup/", 0) != 0))) {
        v2_at = mnt, v2_at_root = root;
      }
    }
  }
  L.v2_mount = v2_at;
  if (!v2_at.empty()) {
    for (const auto& [ctrls, p] : paths)
      if (ctrls.empty()) L.v2_dir = dir_in_mount(v2_at, v2_at_root, p);
  }
  if (v2_root && !v1) {
    L.kind = "v2", L.summary = "v2 (unified hierarchy at /sys/fs/cgroup)";
  } else if (v2_root) {
    L.kind = "hybrid", L.summary = "hybrid (v2 at /sys/fs/cgroup, v1 controllers below it)";
  } else if (v1 && !v2_at.empty()) {
    L.kind = "hybrid", L.summary = "hybrid (v1 controllers, v2 at " + v2_at + ")";
  } else if (v1) {
    L.kind = "v1", L.summary = "v1 (one hierarchy per controller under /sys/fs/cgroup)";
  } else if (!v2_at.empty()) {
    L.kind = "v2", L.summary = "v2 (unified hierarchy at " + v2_at + ")";
  } else {
    L.kind = "none", L.summary = "none mounted";
  }
  return L;
}

std::string cgroup_hierarchy_from(const std::string& mountinfo) { return cgroup_layout_from(mountinfo, "").summary; }

namespace {

bool is_cgroup2(const std::string& dir) {
  struct statfs sf;
  return statfs(dir.c_str(), &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

// Which cgroups the workers use; fills the cgroup fields of c.
void choose_cgroups(Caps& c) {
  const CgroupLayout L = cgroup_layout_from(slurp("/proc/self/mountinfo"), slurp("/proc/self/cgroup"));
  c.cgroup_hierarchy = L.summary;
  c.cgroup_kind = L.kind;
  if (c.root) {
    for (auto [ctrl, base] : {std::pair<const char*, std::string*>{"pids", &c.cgroup_pids_base},
                              {"memory", &c.cgroup_memory_base}, {"cpu", &c.cgroup_cpu_base}}) {
      const std::string d = L.v1_dir(ctrl);
      if (!d.empty() && can_mkdir_in(d)) *base = d;
    }
  }
  c.cgroup_pids = !c.cgroup_pids_base.empty();
  c.cgroup_memory = !c.cgroup_memory_base.empty();
  c.cgroup_cpu = !c.cgroup_cpu_base.empty();
  // v2: PREFOPT_CGROUP2_ROOT (a cgroup2 mount or a cgroup in one), else our own v2 cgroup.
  const char* root_env = std::getenv("PREFOPT_CGROUP2_ROOT");
  const bool root_given = root_env && *root_env;
  c.cgroup2_base = root_given ? std::string(root_env) : L.v2_dir;
  while (c.cgroup2_base.size() > 1 && c.cgroup2_base.back() == '/') c.cgroup2_base.pop_back();
  if (c.cgroup2_base.empty()) {
    c.cgroup2_problem = L.v2_mount.empty() ? "no cgroup2 mount" : "our own cgroup is not visible in " + L.v2_mount;
  } else if (!is_cgroup2(c.cgroup2_base)) {
    c.cgroup2_problem = c.cgroup2_base + " is not on a cgroup2 file system";
  } else {
    c.cgroup2_available = slurp(c.cgroup2_base + "/cgroup.controllers");
    while (!c.cgroup2_available.empty() && std::isspace(static_cast<unsigned char>(c.cgroup2_available.back())))
      c.cgroup2_available.pop_back();
    if (!can_mkdir_in(c.cgroup2_base)) c.cgroup2_problem = "cannot make a cgroup under " + c.cgroup2_base;
  }
  c.cgroup2_usable = c.cgroup2_problem.empty();
  const char* mode_env = std::getenv("PREFOPT_SANDBOX_CGROUP");
  std::string mode = mode_env && *mode_env ? mode_env : "auto";
  std::string ignored;
  if (mode != "auto" && mode != "v1" && mode != "v2" && mode != "none") {
    ignored = "; PREFOPT_SANDBOX_CGROUP=" + mode + " is not auto, v1, v2 or none: ignored";
    mode = "auto";
  }
  const bool v1_ok = c.cgroup_pids || c.cgroup_memory || c.cgroup_cpu;
  bool try_v2 = c.cgroup2_problem.empty() && (mode == "v2" || (mode == "auto" && (root_given || !v1_ok)));
  if (try_v2) {
    // Delegate now (enabling the controllers in the base, moving this process
    // into a leaf if the base holds processes), so the report says what the
    // workers get; the empty subtree is made again by the first worker.
    std::string problem;
    std::string dir = cgroup2_delegate(c.cgroup2_base, {"pids", "memory", "cpu"}, &c.cgroup2_enabled, &problem);
    // As root, when our own cgroup cannot delegate everything (it holds other
    // processes: a login session's scope, a container's init), the root of
    // the hierarchy can: it is exempt from the "no internal processes" rule.
    auto count = [](const std::string& list) {
      std::istringstream in(list);
      int n = 0;
      for (std::string w; in >> w;) ++n;
      return n;
    };
    if (c.root && !root_given && !L.v2_mount.empty() && c.cgroup2_base != L.v2_mount && count(c.cgroup2_enabled) < 3 &&
        can_mkdir_in(L.v2_mount)) {
      std::string enabled2, problem2;
      const std::string dir2 = cgroup2_delegate(L.v2_mount, {"pids", "memory", "cpu"}, &enabled2, &problem2);
      if (!dir2.empty() && count(enabled2) > count(c.cgroup2_enabled)) {
        if (!dir.empty()) rmdir(dir.c_str());
        dir = dir2, c.cgroup2_enabled = enabled2, problem = problem2;
        c.cgroup2_available = slurp(L.v2_mount + "/cgroup.controllers");
        while (!c.cgroup2_available.empty() && std::isspace(static_cast<unsigned char>(c.cgroup2_available.back())))
          c.cgroup2_available.pop_back();
        c.cgroup2_base = L.v2_mount;
      } else if (!dir2.empty()) {
        rmdir(dir2.c_str());
      }
    }
    if (dir.empty()) {
      c.cgroup2_problem = problem;
      c.cgroup2_usable = try_v2 = false;
    } else {
      // Moving a process into the subtree needs write access to the
      // cgroup.procs of the common ancestor of where it is and where it goes:
      // a child of ours tries it (writing "0" moves the writer).
      const std::string leaf = dir + "/probe";
      const bool moved = mkdir(leaf.c_str(), 0755) == 0 && in_child([&leaf] {
        int fd = open((leaf + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
        return fd >= 0 && write(fd, "0", 1) == 1;
      });
      for (int i = 0; i < 100 && rmdir(leaf.c_str()) != 0 && errno == EBUSY; ++i) usleep(1000);
      rmdir(dir.c_str());
      if (!moved) {
        c.cgroup2_problem = "cannot move a process into " + dir +
                            " (the cgroup.procs of the common ancestor is not writable: start prefopt inside the "
                            "delegated cgroup)";
        c.cgroup2_usable = try_v2 = false;
      } else {
        if (!problem.empty()) c.cgroup2_problem = problem;
        // In auto mode a v2 subtree without any of the three controllers is no better than rlimits.
        if (mode == "auto" && !root_given && c.cgroup2_enabled.empty()) try_v2 = false;
      }
    }
  }
  if (c.cgroup2_usable && !try_v2 && c.cgroup2_enabled.empty() && c.cgroup2_problem.empty())
    c.cgroup2_problem = "nothing delegated: the workers do not use v2";
  if (mode == "none") {
    c.cgroup_backend = "none", c.cgroup_backend_why = "PREFOPT_SANDBOX_CGROUP=none: rlimits only";
  } else if (try_v2) {
    c.cgroup_backend = "v2";
    c.cgroup_backend_why = mode == "v2" ? "PREFOPT_SANDBOX_CGROUP=v2"
                           : root_given ? "PREFOPT_CGROUP2_ROOT is set"
                                        : "no usable cgroup v1 controller; a v2 subtree is delegated to us";
  } else if (v1_ok && mode != "v2") {
    c.cgroup_backend = "v1";
    c.cgroup_backend_why = mode == "v1" ? "PREFOPT_SANDBOX_CGROUP=v1" : "our v1 cgroups are usable";
  } else {
    c.cgroup_backend = "none";
    std::string why = c.cgroup2_problem.empty() ? "cgroup v2 offers none of pids, memory, cpu" : c.cgroup2_problem;
    if (!c.root) why = "not root, and " + why;
    c.cgroup_backend_why = "no usable cgroup (" + why + "): rlimits only";
  }
  c.cgroup_backend_why += ignored;
}

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
  choose_cgroups(c);
  c.bwrap = access("/usr/bin/bwrap", X_OK) == 0;
  c.python = "/usr/bin/python3";
  return c;
}

const char* yes(bool b) { return b ? "yes" : "NO"; }

// "v1:pids,memory,cpu", "v2:pids,memory,cpu", "v2:none" or "none": what the
// workers get (WorkerCgroup::describe() of each worker says the same).
std::string cgroup_in_use() {
  const Caps& c = caps();
  std::string list;
  auto add = [&](bool on, const char* n) {
    if (on) list += (list.empty() ? "" : ",") + std::string(n);
  };
  if (c.cgroup_backend == "v1") {
    add(c.cgroup_pids, "pids"), add(c.cgroup_memory, "memory"), add(c.cgroup_cpu, "cpu");
    return "v1:" + list;
  }
  if (c.cgroup_backend == "v2") {
    std::string all = " " + c.cgroup2_enabled + " ";
    for (const char* n : {"pids", "memory", "cpu"}) add(all.find(std::string(" ") + n + " ") != std::string::npos, n);
    return "v2:" + (list.empty() ? std::string("none") : list);
  }
  return "none";
}

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
    << "  cgroup v1 cpu:              " << yes(c.cgroup_cpu) << (c.cgroup_cpu ? " " + c.cgroup_cpu_base : "") << "\n"
    << "  cgroup v2 subtree:          "
    << (c.cgroup2_usable ? "yes under " + c.cgroup2_base + " (delegated to the workers: " +
                               (c.cgroup2_enabled.empty() ? std::string("none") : c.cgroup2_enabled) + ")"
                         : std::string("NO"))
    << (c.cgroup2_base.empty() || c.cgroup2_usable ? "" : " " + c.cgroup2_base)
    << "; offered: " << (c.cgroup2_available.empty() ? std::string("none") : c.cgroup2_available)
    << (c.cgroup2_problem.empty() ? "" : "; " + c.cgroup2_problem) << "\n"
    << "  cgroups used by the runs:   " << cgroup_in_use() << " (" << c.cgroup_backend_why << ")\n"
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
  const std::string cg = cgroup_in_use();
  std::string s = (userns && c.seccomp) ? "full" : (full_ns ? "partial" : "degraded");
  s += " ns=" + (ns.empty() ? std::string("none") : ns);
  // The run's uid: 65534 as root; else root of the worker's user namespace
  // (the invoking user outside, no capabilities), or the invoking user itself.
  const long uid = c.root ? 65534L : (userns ? 0L : static_cast<long>(geteuid()));
  s += " uid=" + std::to_string(uid) + (full_ns ? " rootfs=ro tmpfs-workdir" : " rootfs=host host-workdir");
  s += std::string(" seccomp=") + (c.seccomp ? "on" : "off");
  s += " cgroup=" + cg;
  return s;
}

std::string isolation_report_json() {
  using namespace sandbox_detail;
  const Caps& c = caps();
  nlohmann::json j = {{"root", c.root},
                      {"user_ns", c.user_ns},
                      {"pid_ns", c.pid_ns},
                      {"net_ns", c.net_ns},
                      {"mount_ns", c.mount_ns},
                      {"ipc_ns", c.ipc_ns},
                      {"uts_ns", c.uts_ns},
                      {"cgroup_ns", c.cgroup_ns},
                      {"uid_65534", c.setuid_nobody},
                      {"seccomp", c.seccomp},
                      {"seccomp_filter", seccomp_summary()},
                      {"cgroup_hierarchy", c.cgroup_hierarchy},
                      {"cgroup_kind", c.cgroup_kind},
                      {"cgroup_v1_pids", c.cgroup_pids ? nlohmann::json(c.cgroup_pids_base) : nlohmann::json(nullptr)},
                      {"cgroup_v1_memory", c.cgroup_memory ? nlohmann::json(c.cgroup_memory_base) : nlohmann::json(nullptr)},
                      {"cgroup_v1_cpu", c.cgroup_cpu ? nlohmann::json(c.cgroup_cpu_base) : nlohmann::json(nullptr)},
                      {"cgroup_v2_base", c.cgroup2_base},
                      {"cgroup_v2_usable", c.cgroup2_usable},
                      {"cgroup_v2_offered", c.cgroup2_available},
                      {"cgroup_v2_delegated", c.cgroup2_enabled},
                      {"cgroup_v2_problem", c.cgroup2_problem},
                      {"cgroup_backend", c.cgroup_backend},
                      {"cgroup_backend_why", c.cgroup_backend_why},
                      {"cgroup_in_use", cgroup_in_use()},
                      {"bwrap", c.bwrap},
                      {"python", c.python},
                      {"level", isolation_level()}};
  return j.dump(2) + "\n";
}

}  // namespace prefopt
