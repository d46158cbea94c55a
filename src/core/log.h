// prefopt core: logging to stderr and a progress line (step, loss, tokens/s,
// ETA) that redraws on a terminal and prints plain lines otherwise.
#pragma once
#include <chrono>
#include <string>

#include <fmt/format.h>

namespace prefopt {

enum class LogLevel { Quiet = 0, Info = 1, Debug = 2 };
void set_log_level(LogLevel l);
LogLevel log_level();
void log_line(const std::string& s);  // always to stderr
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) {
  if (log_level() >= LogLevel::Info) log_line(fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) {
  log_line("warning: " + fmt::format(f, std::forward<A>(a)...));
}

double now_seconds();  // monotonic

// Progress for long work. update() throttles output (terminal: redraw ~5/s;
// otherwise a plain line every `plain_every_s` seconds and at the end).
class Progress {
 public:
  Progress(std::string label, long total, double plain_every_s = 10.0);
  // `extra` is appended (e.g. "loss 0.693"); tokens counts throughput.
  void update(long done, const std::string& extra = "", long tokens = 0);
  void finish(const std::string& extra = "");

 private:
  std::string label_;
  long total_;
  double start_, last_print_ = -1e9, every_;
  long tokens_ = 0;
  bool tty_;
  bool printed_end_ = false;
  std::string line(long done, const std::string& extra) const;
};

}  // namespace prefopt
