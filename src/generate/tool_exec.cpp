// run_python_bwrap: a CodeRunner for the tool loop isolated with bubblewrap,
// one bwrap + python3 per call. The CLI uses the sandbox floor's
// run_python_transcript instead (src/sandbox: seccomp, cgroups, a zygote
// forked per run, ~4x faster); this one stays as an alternative runner.
//
// Isolated: user (uid/gid 65534), pid, net, mount, ipc, uts, cgroup namespaces
// (--unshare-all); read-only root; private tmpfs /tmp as the working dir;
// rlimits CPU / address space / file size / open files / core 0; a wall-clock
// limit that SIGKILLs the process group (the pid namespace's init is bwrap's
// child, so the whole tree dies with it, --die-with-parent as a backstop);
// stdin carries the program and then EOF. Not isolated: CPU time beyond the
// rlimit is not cgroup-limited; /dev has the usual bwrap minimal nodes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "generate/tool_loop.h"

namespace prefopt {

namespace {
double mono_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
void set_limit(int what, rlim_t v) {
  rlimit rl{v, v};
  setrlimit(what, &rl);
}
}  // namespace

std::string run_python_bwrap(const std::string& program, const BwrapLimits& lim) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return "SandboxError: pipe failed";
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]), close(in_pipe[1]);
    return "SandboxError: pipe failed";
  }
  std::vector<std::string> args = {"bwrap",      "--ro-bind", "/",         "/",     "--tmpfs",  "/tmp",
                                   "--proc",     "/proc",     "--dev",     "/dev",  "--unshare-all",
                                   "--uid",      "65534",     "--gid",     "65534", "--die-with-parent",
                                   "--new-session", "--chdir", "/tmp",     "--",    "/usr/bin/python3",
                                   "-I",         "-"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) close(fd);
    return "SandboxError: fork failed";
  }
  if (pid == 0) {  // child: only async-signal-safe calls
    setpgid(0, 0);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(out_pipe[1], 2);
    set_limit(RLIMIT_CPU, static_cast<rlim_t>(lim.cpu_seconds));
    set_limit(RLIMIT_AS, static_cast<rlim_t>(lim.address_space_bytes));
    set_limit(RLIMIT_FSIZE, static_cast<rlim_t>(lim.file_size_bytes));
    set_limit(RLIMIT_NOFILE, 256);
    set_limit(RLIMIT_CORE, 0);
    execvp("bwrap", argv.data());
    const char msg[] = "SandboxError: cannot exec bwrap\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(127);
  }
  setpgid(pid, pid);
  close(in_pipe[0]);
  close(out_pipe[1]);
  // Feed the program (python reads all of stdin before it runs anything).
  size_t off = 0;
  signal(SIGPIPE, SIG_IGN);
  while (off < program.size()) {
    ssize_t w = write(in_pipe[1], program.data() + off, program.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    off += static_cast<size_t>(w);
  }
  close(in_pipe[1]);
  std::string out;
  bool truncated = false, timed_out = false;
  const double deadline = mono_seconds() + lim.wall_seconds;
  char buf[8192];
  for (;;) {
    const double left = deadline - mono_seconds();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{out_pipe[0], POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t k = read(out_pipe[0], buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;  // EOF: every writer is gone
    if (out.size() < lim.cap_bytes)
      out.append(buf, std::min(static_cast<size_t>(k), lim.cap_bytes - out.size()));
    else
      truncated = true;  // keep draining so the writer never blocks
  }
  kill(-pid, SIGKILL);
  close(out_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (truncated) out += "\n...[output truncated]";
  if (timed_out) out += "\nTimeoutError: the program ran longer than " + std::to_string(lim.wall_seconds) + " s";
  return out;
}

}  // namespace prefopt
