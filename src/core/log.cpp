#include "core/log.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace prefopt {

static LogLevel g_level = LogLevel::Info;
static std::mutex g_mu;
void set_log_level(LogLevel l) { g_level = l; }
LogLevel log_level() { return g_level; }
void log_line(const std::string& s) {
  std::lock_guard<std::mutex> lk(g_mu);
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::string label, long total, double plain_every_s)
    : label_(std::move(label)), total_(total), start_(now_seconds()), every_(plain_every_s),
      tty_(isatty(STDERR_FILENO)) {}

static std::string hms(double s) {
  if (s < 0 || s > 1e7) return "?";
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string Progress::line(long done, const std::string& extra) const {
  double el = now_seconds() - start_;
  double eta = done > 0 && total_ > 0 ? el / done * (total_ - done) : -1;
  std::string s = fmt::format("{} {}/{}", label_, done, total_);
  if (!extra.empty()) s += " | " + extra;
  if (tokens_ > 0 && el > 0) s += fmt::format(" | {:.0f} tok/s", tokens_ / el);
  s += fmt::format(" | {} elapsed, ETA {}", hms(el), hms(eta));
  return s;
}

void Progress::update(long done, const std::string& extra, long tokens) {
  tokens_ += tokens;
  if (log_level() < LogLevel::Info) return;
  double t = now_seconds();
  bool last = total_ > 0 && done >= total_;
  if (tty_) {
    if (t - last_print_ < 0.2 && !last) return;
    last_print_ = t;
    std::lock_guard<std::mutex> lk(g_mu);
    std::fprintf(stderr, "\r\033[K%s", line(done, extra).c_str());
    std::fflush(stderr);
  } else {
    if (t - last_print_ < every_ && !last) return;
    last_print_ = t;
    printed_end_ = last;
    log_line(line(done, extra));
  }
}

void Progress::finish(const std::string& extra) {
  if (log_level() < LogLevel::Info) return;
  if (tty_) {
    std::lock_guard<std::mutex> lk(g_mu);
    std::fprintf(stderr, "\r\033[K%s\n", line(total_, extra).c_str());
  } else if (!printed_end_) {
    log_line(line(total_, extra));
  }
}

}  // namespace prefopt
