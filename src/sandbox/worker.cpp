// One run on a worker: hand the zygote three fresh pipes (stdout, stderr,
// result) and the program, then supervise from this side: drain both output
// streams continuously (poll) keeping output_bytes of each, watch the wall
// clock, and on a timeout or runaway output SIGKILL the zygote, which is pid 1
// of the worker's pid namespace, so every process of the run dies with it
// (the worker is restarted for the next run). The zygote reports the run's
// wait status once the run's own pid namespace is gone.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include "core/fs.h"
#include "core/log.h"
#include "sandbox/sandbox_impl.h"

namespace prefopt::sandbox_detail {

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : raw) {
    out += hex[ch >> 4];
    out += hex[ch & 15];
  }
  return out;
}

Worker::Worker(int index) : index_(index) {}

Worker::~Worker() {
  kill_zygote();
  cg_.reset();
  if (!host_workdir_.empty()) remove_all(host_workdir_);
}

namespace {

struct Stream {
  int fd = -1;
  std::string text;
  int64_t total = 0;
  bool eof = false;
};

// Reads what is there; keeps at most `keep` bytes.
void drain(Stream& s, int64_t keep) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(s.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;  // EAGAIN
    if (n == 0) {
      s.eof = true;
      return;
    }
    s.total += n;
    if (static_cast<int64_t>(s.text.size()) < keep)
      s.text.append(buf, std::min<size_t>(n, static_cast<size_t>(keep - s.text.size())));
  }
}

bool send_with_fds(int sock, char byte, const int* fds, int nfds) {
  char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  std::memset(cbuf, 0, sizeof cbuf);
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  std::memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == 1;
  }
}

bool send_all(int sock, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(sock, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// TestJob::entry_points on the request line: comma-separated, "-" for none;
// anything that is not a Python identifier made of ASCII is left out.
std::string exported_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    bool ok = !n.empty() && !std::isdigit(static_cast<unsigned char>(n[0]));
    for (char c : n) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) continue;
    if (!out.empty()) out += ',';
    out += n;
  }
  return out.empty() ? "-" : out;
}

}  // namespace

RunResult Worker::run(const std::string& code, const std::string& test_code, char mode, const Limits& lim,
                      const std::vector<std::string>& names) {
  const bool two_units = mode != 'p';
  RunResult r;
  const double t_start = now_seconds();
  if (zpid_ > 0 && waitpid(zpid_, nullptr, WNOHANG) == zpid_) {
    zpid_ = -1;  // died while idle (killed from outside): reaped here, start a new one
    kill_zygote();
  }
  if (zpid_ > 0) {
    // An idle zygote never writes: a readable, hung-up or failed control
    // socket means it is dying or dead (its files close before it can be
    // reaped). Start a new one rather than lose the run to it.
    pollfd p{ctl_, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) kill_zygote();
  }
  if (zpid_ < 0) {
    std::string err;
    if (!spawn(&err)) {
      r.verdict = Verdict::SANDBOX_ERROR;
      r.isolation = "none";
      r.detail = "sandbox could not start: " + err;
      r.wall_seconds = now_seconds() - t_start;
      return r;
    }
  }
  r.isolation = isolation_;
  if (cg_) {
    // The tree's processes and the files it writes to its tmpfs share one cap
    // (plus the zygote, which lives in the same cgroups).
    // +2: the zygote and, for run_tests, the harness next to the candidate.
    cg_->set_limits(std::max(lim.max_processes, 1) + 2, lim.memory_bytes + (int64_t(96) << 20), lim.cpus);
    if (oom_seen_ < 0) oom_seen_ = cg_->oom_kills();
  }
  const int64_t oom_before = oom_seen_;
  const std::string secret = random_hex(16);

  int out_p[2], err_p[2], res_p[2];
  if (pipe2(out_p, O_CLOEXEC) != 0) {
    r.detail = "pipe failed";
    return r;
  }
  if (pipe2(err_p, O_CLOEXEC) != 0) {
    close(out_p[0]), close(out_p[1]);
    r.detail = "pipe failed";
    return r;
  }
  if (pipe2(res_p, O_CLOEXEC) != 0) {
    close(out_p[0]), close(out_p[1]), close(err_p[0]), close(err_p[1]);
    r.detail = "pipe failed";
    return r;
  }
  const int wfds[3] = {out_p[1], err_p[1], res_p[1]};
  const long cpu = std::max(1L, static_cast<long>(std::ceil(lim.cpu_seconds)));
  std::string head = secret + " " + std::to_string(cpu) + " " + std::to_string(lim.memory_bytes) + " " +
                     std::to_string(lim.file_size_bytes) + " " + std::to_string(lim.open_files) + " " +
                     std::to_string(lim.max_processes) + " " + std::to_string(code.size()) + " " +
                     std::to_string(two_units ? test_code.size() : 0) + " " + std::string(1, mode) + " " +
                     exported_names(names) + "\n";
  double t0 = now_seconds();
  bool sent = send_with_fds(ctl_, 'R', wfds, 3);
  if (!sent) {
    // Nothing of the program ran yet: a fresh worker gets the request.
    kill_zygote();
    std::string err;
    if (spawn(&err)) {
      r.isolation = isolation_;
      t0 = now_seconds();
      sent = send_with_fds(ctl_, 'R', wfds, 3);
    }
  }
  for (int fd : wfds) close(fd);
  // The zygote reads while we write, so a large program cannot dead-lock here.
  sent = sent && send_all(ctl_, head) && send_all(ctl_, code) && (!two_units || send_all(ctl_, test_code));

  Stream out, err, res;
  out.fd = out_p[0];
  err.fd = err_p[0];
  res.fd = res_p[0];
  for (Stream* s : {&out, &err, &res}) fcntl(s->fd, F_SETFL, O_NONBLOCK);
  RunFacts f;
  f.cpu_limit_s = static_cast<double>(cpu);
  std::string done_line;
  bool ctl_eof = false;
  const double deadline = t0 + lim.wall_seconds;
  if (!sent) f.zygote_lost = true;
  while (!f.zygote_lost) {
    if (!done_line.empty() && out.eof && err.eof && res.eof) break;
    if (out.total > lim.output_kill_bytes || err.total > lim.output_kill_bytes) {
      f.killed_output = true;
      break;
    }
    double left = deadline - now_seconds();
    if (left <= 0) {
      f.killed_timeout = true;
      break;
    }
    pollfd pfd[4];
    int n = 0;
    Stream* map[4] = {nullptr, nullptr, nullptr, nullptr};
    for (Stream* s : {&out, &err, &res})
      if (!s->eof) map[n] = s, pfd[n++] = {s->fd, POLLIN, 0};
    int ctl_i = -1;
    if (done_line.empty() && !ctl_eof) ctl_i = n, pfd[n++] = {ctl_, POLLIN, 0};
    int pr = poll(pfd, n, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
    if (pr < 0 && errno != EINTR) {
      f.zygote_lost = true;
      break;
    }
    for (int i = 0; i < n && pr > 0; ++i) {
      if (!pfd[i].revents) continue;
      if (i == ctl_i) {
        char buf[256];
        ssize_t k = read(ctl_, buf, sizeof buf);
        if (k > 0) {
          ctl_buf_.append(buf, k);
          size_t nl = ctl_buf_.find('\n');
          if (nl != std::string::npos) {
            done_line = ctl_buf_.substr(0, nl);
            ctl_buf_.erase(0, nl + 1);
          }
        } else if (k == 0 || errno != EINTR) {
          ctl_eof = true;
        }
      } else {
        drain(*map[i], map[i] == &res ? 4096 : lim.output_bytes);
      }
    }
    if (ctl_eof && done_line.empty()) f.zygote_lost = true;
  }
  if (f.killed_timeout || f.killed_output || f.zygote_lost) {
    kill_zygote();  // the whole worker (and so the run's tree) is gone after this
    // Everything that held a write end is dead: read what is left up to EOF.
    const double until = now_seconds() + 2.0;
    for (Stream* s : {&out, &err, &res}) {
      while (!s->eof && now_seconds() < until) {
        pollfd p{s->fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) drain(*s, s == &res ? 4096 : lim.output_bytes);
      }
    }
  }
  r.wall_seconds = now_seconds() - t0;
  for (Stream* s : {&out, &err, &res}) close(s->fd);
  if (!done_line.empty()) {
    // "D <wait status> <cpu ms> <candidate status> <candidate cpu ms>"; the
    // candidate's status is -1 without one (run_python, or killed after the
    // harness ended) and -2 when its own setup failed.
    long st = 0, cpu_ms = 0, cst = -1, ccpu = 0;
    const int got = std::sscanf(done_line.c_str(), "D %ld %ld %ld %ld", &st, &cpu_ms, &cst, &ccpu);
    if (got >= 2 && st >= 0) {
      f.have_status = true;
      f.wait_status = static_cast<int>(st);
      f.cpu_ms = cpu_ms;
      if (got == 4 && cst >= 0) {
        f.cand_have_status = true;
        f.cand_wait_status = static_cast<int>(cst);
        f.cand_cpu_ms = ccpu;
      }
      if (got == 4 && cst == -2) f.setup_failed = true;
    } else {
      f.zygote_lost = true;
    }
  }
  // Result channel (written by the run, or for run_tests by the harness only):
  // "PASS <secret>" after the last test line, "EXC <type>", "LOST <why>"
  // (the candidate's process is gone), "BAD <why>" (a non-plain answer).
  {
    size_t pos = 0;
    const std::string& t = res.text;
    while (pos < t.size()) {
      size_t nl = t.find('\n', pos);
      std::string line = t.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? t.size() : nl + 1;
      if (line == "PASS " + secret) f.secret_ok = true;
      if (line.rfind("EXC ", 0) == 0) f.exception = line.substr(4);
      if (line == "SETUP") f.setup_failed = true;
      if (line.rfind("LOST ", 0) == 0) f.candidate_lost = line.substr(5);
      if (line.rfind("BAD ", 0) == 0) f.rejected = line.substr(4);
    }
  }
  if (cg_) {
    oom_seen_ = cg_->oom_kills();
    f.oom_killed = oom_seen_ > oom_before;
  }
  r.stdout_text = std::move(out.text);
  r.stderr_text = std::move(err.text);
  r.stdout_truncated = out.total > lim.output_bytes;
  r.stderr_truncated = err.total > lim.output_bytes;
  decide_verdict(f, r);
  if (f.zygote_lost && !f.killed_timeout && !f.killed_output) {
    r.detail += "; worker lost, restarted for the next run";
    kill_zygote();
  }
  return r;
}

}  // namespace prefopt::sandbox_detail
