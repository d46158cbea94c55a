// pass@k curve picture: the shared SVG line chart, optional PNG.
#include "verify/passk_plot.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "core/fs.h"

namespace prefopt {

namespace {

// Runs argv without a shell, output discarded; true on exit status 0.
bool run_quiet(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    FILE* devnull = std::fopen("/dev/null", "w");
    if (devnull) {
      dup2(fileno(devnull), 1);
      dup2(fileno(devnull), 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace

std::string passk_svg(const std::vector<PassKCurve>& curves, const std::string& title, int width, int height) {
  std::vector<Series> series;
  for (auto& c : curves) {
    Series s{c.label, {}, {}};
    for (auto& [k, v] : c.points) s.x.push_back(static_cast<double>(k)), s.y.push_back(v);
    series.push_back(std::move(s));
  }
  ChartStyle st;
  st.log2_x = true, st.fixed_y = true, st.y_lo = 0, st.y_hi = 1, st.width = width, st.height = height;
  return svg_line_chart(title, "k", "pass@k", series, st);
}

std::string svg_to_png(const std::string& svg_path, const std::string& png_path) {
  const std::string tmp = png_path + ".tmp.png";
  struct Tool {
    const char* name;
    std::vector<std::string> (*args)(const std::string& exe, const std::string& in, const std::string& out);
  };
  const Tool tools[] = {
      {"rsvg-convert", [](const std::string& e, const std::string& i,
                          const std::string& o) { return std::vector<std::string>{e, "-o", o, i}; }},
      {"convert", [](const std::string& e, const std::string& i,
                     const std::string& o) { return std::vector<std::string>{e, i, o}; }},
  };
  for (auto& t : tools) {
    std::string exe = find_in_path(t.name);
    if (exe.empty()) continue;
    std::remove(tmp.c_str());
    struct stat st {};
    if (run_quiet(t.args(exe, svg_path, tmp)) && stat(tmp.c_str(), &st) == 0 && st.st_size > 0) {
      fsync_path(tmp);
      if (std::rename(tmp.c_str(), png_path.c_str()) == 0) return t.name;
    }
    std::remove(tmp.c_str());
  }
  return "";
}

}  // namespace prefopt
