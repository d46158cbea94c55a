#include "dist/launch.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"

extern char** environ;

namespace prefopt::dist {

namespace {

int parse_count(const std::string& v, const char* flag, int lo, int hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    fail(flag, fmt::format("\"{}\" is not an integer in {}..{}", v, lo, hi),
         std::string(flag) == "--nproc_per_node" ? "pass the number of ranks to start on this machine, e.g. 2"
                                                 : "pass a free TCP port, or leave it out for one picked at random");
  return static_cast<int>(x);
}

// The arguments this process was started with (the kernel's copy: CLI parsing does not change it).
std::vector<std::string> own_arguments() {
  std::vector<std::string> out;
  std::FILE* f = std::fopen("/proc/self/cmdline", "rb");
  PREFOPT_REQUIRE(f != nullptr, "/proc/self/cmdline", "cannot be read", "--nproc_per_node needs Linux's /proc");
  std::string cur;
  int c;
  while ((c = std::fgetc(f)) != EOF) {
    if (c == '\0') out.push_back(cur), cur.clear();
    else cur.push_back(static_cast<char>(c));
  }
  std::fclose(f);
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// `args` without "--flag V" / "--flag=V" for the launcher's own flags.
std::vector<std::string> without_launcher_flags(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    bool skip = false;
    for (const char* f : {"--nproc_per_node", "--master_port"}) {
      const std::string flag = f;
      if (args[i] == flag) skip = true, ++i;  // and its value
      else if (args[i].rfind(flag + "=", 0) == 0) skip = true;
      if (skip) break;
    }
    if (!skip) out.push_back(args[i]);
  }
  return out;
}

int free_loopback_port() {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  PREFOPT_REQUIRE(s >= 0, "--nproc_per_node", "cannot open a socket to find a free port", "pass --master_port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  const bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n) == 0;
  close(s);
  PREFOPT_REQUIRE(ok, "--nproc_per_node", "cannot find a free port on 127.0.0.1", "pass --master_port");
  return ntohs(a.sin_port);
}

struct Rank {
  pid_t pid = -1;
  int err = -1;        // read end of its stderr pipe (-1 once closed)
  std::string partial;  // a stderr line not yet complete
  bool running = false;
  int status = 0;
};

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<size_t>(w);
  }
}

// Reads what rank i wrote to stderr and prints its complete lines with the prefix; at EOF the rest.
void pump(Rank& r, int i) {
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(r.err, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    const std::string prefix = fmt::format("[rank {}] ", i);
    if (n <= 0) {
      if (!r.partial.empty()) write_all(2, prefix + r.partial + "\n"), r.partial.clear();
      close(r.err), r.err = -1;
      return;
    }
    r.partial.append(buf, static_cast<size_t>(n));
    std::string out;
    size_t start = 0, nl;
    while ((nl = r.partial.find('\n', start)) != std::string::npos)
      out += prefix + r.partial.substr(start, nl + 1 - start), start = nl + 1;
    r.partial.erase(0, start);
    if (!out.empty()) write_all(2, out);
  }
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    return fmt::format("was killed by signal {} ({})", s, strsignal(s));
  }
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

// Signals reach the loop through a pipe: a handler (not a blocked mask, which
// would hold only for this thread while libraries' threads may receive the
// signal) writes the signal's number; exec gives the ranks default handlers.
int g_signal_pipe = -1;
void on_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t w = ::write(g_signal_pipe, &b, 1);
  errno = saved;
}

int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

[[noreturn]] void run_local_ranks(int n, int port) {
  const std::vector<std::string> args = without_launcher_flags(own_arguments());
  PREFOPT_REQUIRE(!args.empty(), "/proc/self/cmdline", "is empty", "");
  if (port == 0) port = free_loopback_port();
  // Everything the children need, built before fork (only async-signal-safe calls between fork and exec).
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> base;
  bool has_omp = false;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const std::string k = kv.substr(0, kv.find('='));
    if (k == "RANK" || k == "LOCAL_RANK" || k == "WORLD_SIZE" || k == "LOCAL_WORLD_SIZE" || k == "MASTER_ADDR" ||
        k == "MASTER_PORT" || k == "TORCHELASTIC_USE_AGENT_STORE" || k == "TORCHELASTIC_RESTART_COUNT")
      continue;
    if (k == "OMP_NUM_THREADS") has_omp = true;
    base.push_back(kv);
  }
  base.push_back("WORLD_SIZE=" + std::to_string(n));
  base.push_back("LOCAL_WORLD_SIZE=" + std::to_string(n));
  base.push_back("MASTER_ADDR=127.0.0.1");
  base.push_back("MASTER_PORT=" + std::to_string(port));
  if (!has_omp) base.push_back("OMP_NUM_THREADS=1");  // as torchrun: one OpenBLAS/OpenMP thread per rank
  std::vector<std::vector<std::string>> envs(static_cast<size_t>(n), base);
  std::vector<std::vector<char*>> envp(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    envs[i].push_back("RANK=" + std::to_string(i));
    envs[i].push_back("LOCAL_RANK=" + std::to_string(i));
    for (auto& kv : envs[i]) envp[i].push_back(const_cast<char*>(kv.c_str()));
    envp[i].push_back(nullptr);
  }
  info("launcher: {} local ranks of `{}`, MASTER_ADDR 127.0.0.1, MASTER_PORT {}{}", n, args.size() > 1 ? args[1] : "",
       port, has_omp ? "" : ", OMP_NUM_THREADS 1");

  int sp[2];
  PREFOPT_REQUIRE(pipe2(sp, O_CLOEXEC | O_NONBLOCK) == 0, "--nproc_per_node", "pipe failed", "");
  g_signal_pipe = sp[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  const int sfd = sp[0];
  std::fflush(stdout), std::fflush(stderr);
  const pid_t me = getpid();
  std::vector<Rank> ranks(static_cast<size_t>(n));
  int running = 0;
  for (int i = 0; i < n; ++i) {
    int p[2];
    PREFOPT_REQUIRE(pipe2(p, O_CLOEXEC) == 0, "--nproc_per_node", "pipe failed", "");
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // the launcher's death (even by SIGKILL) takes the rank with it
      if (getppid() != me) _exit(1);
      dup2(p[1], 2);
      execve("/proc/self/exe", argv.data(), envp[static_cast<size_t>(i)].data());
      _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
      close(p[0]);
      warn("launcher: fork failed for rank {}: {}", i, std::strerror(errno));
      break;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    ranks[i].pid = pid, ranks[i].err = p[0], ranks[i].running = true, ++running;
    info("launcher: rank {} is pid {}", i, pid);
  }

  int code = running == n ? 0 : 1;
  bool stopping = running != n;
  double kill_at = stopping ? now_seconds() + kLocalRanksGraceSeconds : 0;
  bool killed = false;
  auto stop_all = [&](int sig) {
    for (auto& r : ranks)
      if (r.running) kill(r.pid, sig);
  };
  if (stopping) stop_all(SIGTERM);
  for (;;) {
    bool pipes_open = false;
    for (auto& r : ranks) pipes_open |= r.err >= 0;
    if (running == 0 && !pipes_open) break;
    std::vector<pollfd> fds{{sfd, POLLIN, 0}};
    std::vector<int> who{-1};
    for (int i = 0; i < n; ++i)
      if (ranks[i].err >= 0) fds.push_back({ranks[i].err, POLLIN, 0}), who.push_back(i);
    int timeout_ms = -1;
    if (stopping && !killed) timeout_ms = std::max(0, static_cast<int>((kill_at - now_seconds()) * 1000) + 1);
    // Ranks all gone: their pipes may still be held by their own children; stop reading soon.
    if (running == 0) timeout_ms = 200;
    const int k = poll(fds.data(), fds.size(), timeout_ms);
    if (k < 0 && errno != EINTR) break;
    if (k == 0 && running == 0) {
      for (int i = 0; i < n; ++i) {
        if (ranks[i].err >= 0) pump(ranks[i], i);
        if (ranks[i].err >= 0) close(ranks[i].err), ranks[i].err = -1;
      }
      break;
    }
    for (size_t j = 1; j < fds.size(); ++j)
      if (fds[j].revents) pump(ranks[who[j]], who[j]);
    if (fds[0].revents & POLLIN) {
      unsigned char b;
      while (::read(sfd, &b, 1) == 1) {
        const int sig = b;
        if (sig == SIGCHLD) continue;  // reaped below
        warn("launcher: got signal {} ({}); passing it to the ranks", sig, strsignal(sig));
        stop_all(sig);
        if (code == 0) code = 128 + sig;
        if (!stopping) stopping = true, kill_at = now_seconds() + kLocalRanksGraceSeconds;
      }
    }
    for (;;) {  // reap
      int st = 0;
      const pid_t pid = waitpid(-1, &st, WNOHANG);
      if (pid <= 0) break;
      for (int i = 0; i < n; ++i) {
        Rank& r = ranks[i];
        if (r.pid != pid || !r.running) continue;
        r.running = false, r.status = st, --running;
        const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok && !stopping) {
          std::fprintf(stderr, "prefopt: error: rank %d of %d (pid %d) %s; stopping the other ranks\n", i, n,
                       static_cast<int>(pid), describe(st).c_str());
          code = exit_code(st);
          stopping = true, kill_at = now_seconds() + kLocalRanksGraceSeconds;
          stop_all(SIGTERM);
        } else if (!ok) {
          info("launcher: rank {} {}", i, describe(st));
          if (code == 0) code = exit_code(st);
        }
      }
    }
    if (stopping && !killed && running > 0 && now_seconds() >= kill_at) {
      warn("launcher: ranks still running {} s after SIGTERM; sending SIGKILL", kLocalRanksGraceSeconds);
      stop_all(SIGKILL);
      killed = true;
    }
  }
  if (code == 0)
    for (auto& r : ranks)
      if (!(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)) code = 1;
  std::fflush(stdout), std::fflush(stderr);
  std::exit(code);
}

}  // namespace

void run_local_ranks_if_asked(const std::string& nproc, const std::string& master_port) {
  if (nproc.empty()) {
    if (!master_port.empty()) warn("--master_port {} ignored: it goes with --nproc_per_node N > 1", master_port);
    return;
  }
  const int n = parse_count(nproc, "--nproc_per_node", 1, 4096);
  const int port = master_port.empty() ? 0 : parse_count(master_port, "--master_port", 1, 65535);
  if (n == 1) return;
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) {
    const char* x = std::getenv(v);
    if (x && *x)
      fail("--nproc_per_node", fmt::format("{} > 1, but {} is already set ({}): a launcher started this process", n, v, x),
           "drop --nproc_per_node under torchrun (it starts the ranks), or unset torchrun's variables");
  }
  run_local_ranks(n, port);
}

}  // namespace prefopt::dist
