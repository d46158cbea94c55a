// Starting a worker's zygote: clone() into new user, mount, pid, net, ipc,
// uts and cgroup namespaces, map root and uid/gid 65534, build a read-only
// root on a tmpfs (read-only binds of /usr and the /lib*, /bin, /sbin links or
// dirs, ld.so.cache, a generated passwd/group, /dev null/zero/full/random/
// urandom, /dev/shm and /tmp as size-capped tmpfs, a fresh /proc of the
// worker's pid namespace), pivot_root into it, then exec /usr/bin/python3 -I -S
// with the zygote source. The zygote is pid 1 of the worker's pid namespace:
// SIGKILL to it (a timeout) takes every process of the worker with it.
//
// Between clone() and exec() the child of a possibly multi-threaded process
// only makes system calls on strings prepared beforehand (no allocation).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/log.h"
#include "sandbox/sandbox_impl.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace prefopt::sandbox_detail {

namespace {

constexpr const char* kStage = "/tmp";  // the new root is built on a tmpfs mounted here (in our mount ns)

struct Bind {
  std::string src, dst;
  unsigned long remount_flags = 0;  // 0: keep the bind as is (device nodes)
  bool is_file = false;
};
struct Link {
  std::string target, path;
};
struct Plan {
  std::vector<std::string> dirs;  // created in order under the stage
  std::vector<Link> links;
  std::vector<Bind> binds;
  std::vector<std::pair<std::string, std::string>> files;  // generated: path, content
  std::string shm, proc, tmp;                               // mount points under the stage
};

unsigned long keep_flags(const std::string& src) {
  struct statvfs sv;
  unsigned long f = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV;
  if (statvfs(src.c_str(), &sv) != 0) return f | MS_RELATIME;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_NOATIME)
    f |= MS_NOATIME;
  else if (sv.f_flag & ST_RELATIME)
    f |= MS_RELATIME;
  else
    f |= MS_STRICTATIME;
  return f;
}

Plan make_plan() {
  Plan p;
  const std::string R = kStage;
  for (const char* name : {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    std::string host = std::string("/") + name;
    struct stat st;
    if (lstat(host.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = readlink(host.c_str(), buf, sizeof buf - 1);
      if (n > 0) p.links.push_back({std::string(buf, n), R + host});
    } else if (S_ISDIR(st.st_mode)) {
      p.dirs.push_back(R + host);
      p.binds.push_back({host, R + host, keep_flags(host), false});
    }
  }
  p.dirs.push_back(R + "/etc");
  if (access("/etc/ld.so.cache", R_OK) == 0)
    p.binds.push_back({"/etc/ld.so.cache", R + "/etc/ld.so.cache", keep_flags("/etc/ld.so.cache"), true});
  {
    char buf[4096];
    ssize_t n = readlink("/etc/localtime", buf, sizeof buf - 1);
    if (n > 0 && std::strncmp(buf, "/usr/", 5) == 0) p.links.push_back({std::string(buf, n), R + "/etc/localtime"});
  }
  p.files.push_back({R + "/etc/passwd", "root:x:0:0:root:/:/usr/sbin/nologin\n"
                                        "nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
                                        "harness:x:65533:65533:harness:/:/usr/sbin/nologin\n"});
  p.files.push_back({R + "/etc/group", "root:x:0:\nnogroup:x:65534:\nharness:x:65533:\n"});
  p.files.push_back({R + "/etc/hosts", "127.0.0.1 localhost\n"});
  p.files.push_back({R + "/etc/hostname", "sandbox\n"});
  p.dirs.push_back(R + "/dev");
  for (const char* d : {"null", "zero", "full", "random", "urandom"})
    p.binds.push_back({std::string("/dev/") + d, R + "/dev/" + d, 0, true});
  p.links.push_back({"/proc/self/fd", R + "/dev/fd"});
  p.links.push_back({"/proc/self/fd/0", R + "/dev/stdin"});
  p.links.push_back({"/proc/self/fd/1", R + "/dev/stdout"});
  p.links.push_back({"/proc/self/fd/2", R + "/dev/stderr"});
  p.dirs.push_back(R + "/dev/shm");
  p.dirs.push_back(R + "/proc");
  p.dirs.push_back(R + "/tmp");
  p.shm = R + "/dev/shm";
  p.proc = R + "/proc";
  p.tmp = R + "/tmp";
  return p;
}

// ---- child side (no allocation) ----
struct ChildArgs {
  const Plan* plan;
  int sync_fd, err_fd, ctl_fd, devnull;
  bool namespaces;
  const char* tmp_opts;  // "size=...,nr_inodes=...,mode=1777"
  const char* shm_opts;
  char* const* argv;
  char* const* envp;
};

void put_num(char*& p, long v) {
  char tmp[24];
  int n = 0;
  bool neg = v < 0;
  unsigned long u = neg ? -static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) *p++ = '-';
  while (n) *p++ = tmp[--n];
}

[[noreturn]] void die(int fd, const char* step, const char* arg) {
  int e = errno;
  char buf[512];
  char* p = buf;
  auto put = [&](const char* s) {
    while (*s && p < buf + 400) *p++ = *s++;
  };
  put(step);
  if (arg) {
    put(" ");
    put(arg);
  }
  put(": errno ");
  put_num(p, e);
  put(" (");
  put(strerrorname_np(e) ? strerrorname_np(e) : "?");
  put(")");
  (void)!write(fd, buf, p - buf);
  _exit(127);
}

[[noreturn]] void child_main(const ChildArgs& a) {
  const int ef = a.err_fd;
  char c;
  if (read(a.sync_fd, &c, 1) != 1) die(ef, "waiting for the uid map", nullptr);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(ef, "prctl(PDEATHSIG)", nullptr);
  if (a.namespaces) {
    const Plan& P = *a.plan;
    const char* R = kStage;
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die(ef, "mount --make-rprivate", "/");
    if (mount("tmpfs", R, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=256,mode=0755") != 0)
      die(ef, "mount tmpfs", R);
    for (const auto& d : P.dirs)
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) die(ef, "mkdir", d.c_str());
    for (const auto& l : P.links)
      if (symlink(l.target.c_str(), l.path.c_str()) != 0) die(ef, "symlink", l.path.c_str());
    for (const auto& f : P.files) {
      int fd = open(f.first.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, f.second.data(), f.second.size()) != static_cast<ssize_t>(f.second.size()))
        die(ef, "write", f.first.c_str());
      close(fd);
    }
    for (const auto& b : P.binds) {
      if (b.is_file) {
        int fd = open(b.dst.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) die(ef, "create", b.dst.c_str());
        close(fd);
      }
      if (mount(b.src.c_str(), b.dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        die(ef, "bind", b.src.c_str());
      if (b.remount_flags && mount(nullptr, b.dst.c_str(), nullptr, b.remount_flags, nullptr) != 0)
        die(ef, "remount read-only", b.dst.c_str());
    }
    if (mount("tmpfs", P.shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, a.shm_opts) != 0)
      die(ef, "mount tmpfs", "/dev/shm");
    if (mount("proc", P.proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      die(ef, "mount proc", "/proc");
    if (mount("tmpfs", P.tmp.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, a.tmp_opts) != 0)
      die(ef, "mount tmpfs", "/tmp");
    if (mount(nullptr, R, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
      die(ef, "remount read-only", "/");
    if (chdir(R) != 0) die(ef, "chdir", R);
    if (syscall(SYS_pivot_root, ".", ".") != 0) die(ef, "pivot_root", R);
    if (umount2(".", MNT_DETACH) != 0) die(ef, "umount old root", nullptr);
    if (chdir("/") != 0) die(ef, "chdir", "/");
    if (sethostname("sandbox", 7) != 0) die(ef, "sethostname", nullptr);
  }
  // fds: 0-2 /dev/null, 3 control socket.
  int hi[2] = {fcntl(a.devnull, F_DUPFD_CLOEXEC, 100), fcntl(a.ctl_fd, F_DUPFD_CLOEXEC, 100)};
  for (int h : hi)
    if (h < 0) die(ef, "dup", nullptr);
  if (dup2(hi[0], 0) < 0 || dup2(hi[0], 1) < 0 || dup2(hi[0], 2) < 0 || dup2(hi[1], 3) < 0) die(ef, "dup2", nullptr);
  // Anything else another thread of the host process left without O_CLOEXEC.
  syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC);
  // Its own session and process group (degraded mode kills the group).
  if (setsid() < 0) die(ef, "setsid", nullptr);
  execve(a.argv[0], a.argv, a.envp);
  die(ef, "exec", a.argv[0]);
}

// One CPU per worker (round robin over the CPUs we may use): a run's
// address space is then only ever live on one CPU, so its copy-on-write
// faults need no TLB-shootdown IPIs (expensive in a VM), and concurrent runs
// do not compete for a core. A run's threads share that CPU.
void pin_to_cpu(pid_t pid, int index) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  const int n = CPU_COUNT(&allowed);
  if (n <= 1) return;
  int want = index % n, seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (seen++ == want) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      sched_setaffinity(pid, sizeof one, &one);
      return;
    }
  }
}

bool write_file(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

std::string read_line(int fd, std::string& buf, double timeout_s) {
  double deadline = now_seconds() + timeout_s;
  for (;;) {
    size_t nl = buf.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return line;
    }
    double left = deadline - now_seconds();
    if (left <= 0) return "";
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    buf.append(tmp, n);
  }
}

}  // namespace

bool Worker::spawn_with(bool namespaces, std::string* err) {
  const Caps& c = caps();
  const bool userns = namespaces && c.user_ns;
  static const Plan plan = make_plan();
  std::string tmp_opts = "size=" + std::to_string(64 << 20) + ",nr_inodes=16384,mode=1777";
  std::string shm_opts = "size=" + std::to_string(16 << 20) + ",nr_inodes=1024,mode=1777";
  std::string workdir = "/tmp";
  if (!namespaces) {
    // No mount namespace: a private directory on the host's /tmp (kept across
    // restarts of this worker, removed with it).
    if (host_workdir_.empty()) {
      char tmpl[] = "/tmp/prefopt-sandbox-XXXXXX";
      if (!mkdtemp(tmpl)) {
        *err = "mkdtemp failed";
        return false;
      }
      host_workdir_ = tmpl;
    }
    remove_all(host_workdir_);
    make_dirs(host_workdir_);
    chmod(host_workdir_.c_str(), 01777);
    workdir = host_workdir_;
  }
  // Run uid: 65534 where it can be reached, else our own (mapped) uid with caps dropped.
  // The tests' harness (run_tests) gets a uid of its own (65533), so the
  // candidate's process can neither signal it nor read its memory or fds.
  int run_uid = 65534, run_gid = 65534, harness_uid = 65533, harness_gid = 65533;
  if (!c.root) {
    run_uid = userns ? 0 : static_cast<int>(geteuid()), run_gid = userns ? 0 : static_cast<int>(getegid());
    harness_uid = run_uid, harness_gid = run_gid;  // one mapped uid only: the harness is still not dumpable
  }
  long run_clone = SIGCHLD;
  if (namespaces) run_clone |= CLONE_NEWIPC;  // SysV IPC objects die with each run
  std::vector<std::string> args = {c.python,
                                   "-I",
                                   "-S",
                                   "-B",
                                   "-c",
                                   kZygoteSource,
                                   std::to_string(run_uid),
                                   std::to_string(run_gid),
                                   std::to_string(run_clone),
                                   workdir,
                                   std::to_string(harness_uid),
                                   std::to_string(harness_gid)};
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + workdir};
  std::vector<char*> argv, envp;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);

  int sv[2], syncp[2], errp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *err = "socketpair failed";
    return false;
  }
  if (pipe2(syncp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    close(sv[0]), close(sv[1]);
    *err = "pipe failed";
    return false;
  }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (!cg_) cg_ = WorkerCgroup::create(index_);
  ChildArgs a{&plan,
              syncp[0],
              errp[1],
              sv[1],
              devnull,
              namespaces,
              tmp_opts.c_str(),
              shm_opts.c_str(),
              argv.data(),
              envp.data()};
  long flags = SIGCHLD;
  if (namespaces) {
    flags |= CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
    if (c.cgroup_ns) flags |= CLONE_NEWCGROUP;
    if (userns) flags |= CLONE_NEWUSER;
  }
  long pid = syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0L);
  if (pid == 0) child_main(a);
  int clone_errno = errno;
  close(sv[1]);
  close(syncp[0]);
  close(errp[1]);
  close(devnull);
  auto fail_with = [&](const std::string& why) {
    if (pid > 0) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      while (waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    close(sv[0]);
    close(syncp[1]);
    close(errp[0]);
    *err = why;
    return false;
  };
  if (pid < 0) return fail_with(std::string("clone: ") + std::strerror(clone_errno));
  if (userns) {
    std::string p = "/proc/" + std::to_string(pid);
    std::string uid_map = c.root ? "0 0 1\n65533 65533 2\n" : "0 " + std::to_string(geteuid()) + " 1\n";
    std::string gid_map = c.root ? "0 0 1\n65533 65533 2\n" : "0 " + std::to_string(getegid()) + " 1\n";
    if (!c.root) write_file(p + "/setgroups", "deny");
    if (!write_file(p + "/uid_map", uid_map) || !write_file(p + "/gid_map", gid_map))
      return fail_with("writing the uid/gid map of the worker's user namespace failed");
  }
  // The zygote joins the worker's cgroups (its runs are born in them, no
  // per-run migration) and is never the OOM killer's choice (-1000; each run
  // sets itself to +1000 first thing, so the runs go first).
  if (cg_ && !cg_->add(static_cast<pid_t>(pid))) return fail_with("joining the worker's cgroups failed");
  write_file("/proc/" + std::to_string(pid) + "/oom_score_adj", "-1000");
  pin_to_cpu(static_cast<pid_t>(pid), index_);
  if (write(syncp[1], "x", 1) != 1) return fail_with("sync write failed");
  close(syncp[1]);
  syncp[1] = -1;
  std::string setup_err;
  {
    char buf[512];
    ssize_t n;
    while ((n = read(errp[0], buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      setup_err.append(buf, n);
    }
  }
  close(errp[0]);
  errp[0] = -1;
  if (!setup_err.empty()) return fail_with("worker setup: " + setup_err);
  zpid_ = static_cast<pid_t>(pid);
  ctl_ = sv[0];
  ctl_buf_.clear();
  // Init message: the seccomp filter.
  const std::string& bpf = seccomp_bpf();
  std::string init = "I " + std::to_string(bpf.size()) + "\n" + bpf;
  if (send(ctl_, init.data(), init.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(init.size())) {
    kill_zygote();
    *err = "sending the init message failed";
    return false;
  }
  std::string ready = read_line(ctl_, ctl_buf_, 60.0);
  if (ready.rfind("READY", 0) != 0) {
    kill_zygote();
    *err = "the zygote did not start (no READY within 60 s)";
    return false;
  }
  std::string cg = cg_ ? cg_->describe() : "";
  std::string ns = userns ? "user,pid,net,mount,ipc,uts" : (namespaces ? "pid,net,mount,ipc,uts" : "none");
  if (namespaces && c.cgroup_ns) ns += ",cgroup";
  isolation_ = std::string(namespaces ? (userns && !bpf.empty() ? "full" : "partial") : "degraded") + " ns=" + ns +
               " uid=" + std::to_string(run_uid) + (namespaces ? " rootfs=ro" : " rootfs=host") +
               (namespaces ? " tmpfs-workdir" : " host-workdir") + " seccomp=" + (bpf.empty() ? "off" : "on") + " cgroup=" + (cg.empty() ? "none" : cg);
  return true;
}

bool Worker::spawn(std::string* err) {
  const Caps& c = caps();
  // PREFOPT_SANDBOX_NAMESPACES=0: skip the namespaces (a machine whose
  // kernel misbehaves with them; also how the degraded path is tested).
  const char* env = std::getenv("PREFOPT_SANDBOX_NAMESPACES");
  const bool allow_ns = !(env && std::string(env) == "0");
  bool ns_ok = allow_ns && c.pid_ns && c.net_ns && c.mount_ns && c.ipc_ns && c.uts_ns;
  std::string e1;
  if (ns_ok && spawn_with(true, &e1)) return true;
  std::string e2;
  if (spawn_with(false, &e2)) {
    static std::atomic<bool> warned{false};
    if ((!e1.empty() || !allow_ns) && !warned.exchange(true))
      warn("sandbox: namespaces {}; runs are degraded (no pid/mount/net isolation)",
           allow_ns ? "unavailable (" + e1 + ")" : "disabled by PREFOPT_SANDBOX_NAMESPACES=0");
    return true;
  }
  *err = e1.empty() ? e2 : e1 + "; without namespaces: " + e2;
  return false;
}

namespace {

// Every live (not zombie) descendant of `root`, read from /proc.
std::vector<pid_t> live_descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> procs;  // pid, ppid
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0) continue;
      char path[64], buf[512];
      std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n <= 0) continue;
      buf[n] = '\0';
      const char* rp = std::strrchr(buf, ')');  // "pid (comm) S ppid ..."
      char state = 0;
      int ppid = 0;
      if (!rp || std::sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || state == 'Z' || state == 'X') continue;
      procs.push_back({pid, static_cast<pid_t>(ppid)});
    }
    closedir(d);
  }
  std::vector<pid_t> out{root};
  for (size_t i = 0; i < out.size(); ++i)
    for (auto& [pid, ppid] : procs)
      if (ppid == out[i]) out.push_back(pid);
  out.erase(out.begin());
  return out;
}

}  // namespace

void Worker::kill_zygote() {
  if (zpid_ > 0) {
    if (!isolation_.empty() && isolation_.rfind("degraded", 0) == 0) {
      // No pid namespace to take the tree down with the zygote: kill its
      // descendants first, while it is alive as their child subreaper (every
      // orphan of the run is re-parented to it, so the scan sees them all).
      for (int round = 0; round < 1000; ++round) {
        std::vector<pid_t> d = live_descendants(zpid_);
        if (d.empty()) break;
        for (pid_t p : d) kill(p, SIGKILL);
        usleep(1000);
      }
      kill(-zpid_, SIGKILL);
    }
    kill(zpid_, SIGKILL);
    while (waitpid(zpid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  zpid_ = -1;
  if (ctl_ >= 0) close(ctl_);
  ctl_ = -1;
  ctl_buf_.clear();
}

}  // namespace prefopt::sandbox_detail
