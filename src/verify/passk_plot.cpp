// pass@k curve picture: a hand-written SVG (no plotting library), optional PNG.
#include "verify/passk_plot.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>

#include "core/fs.h"

namespace prefopt {

namespace {

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string p(path);
  size_t b = 0;
  while (b <= p.size()) {
    size_t e = p.find(':', b);
    if (e == std::string::npos) e = p.size();
    std::string cand = p.substr(b, e - b) + "/" + name;
    if (e > b && access(cand.c_str(), X_OK) == 0) return cand;
    b = e + 1;
  }
  return "";
}

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

std::string svg_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_open(int width, int height, double title_x, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{:.1f}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
      width, height, width, height, title_x, svg_escape(title));
}

const char* svg_colour(size_t i) {
  static const char* const kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
  return kColours[i % (sizeof kColours / sizeof *kColours)];
}

std::string passk_svg(const std::vector<PassKCurve>& curves, const std::string& title, int width, int height) {
  const double left = 64, right = 24, top = 40, bottom = 56;
  const double pw = width - left - right, ph = height - top - bottom;
  int64_t kmax = 1;
  for (auto& c : curves)
    for (auto& [k, v] : c.points) kmax = std::max(kmax, k);
  const double lmax = std::max(1.0, std::log2(static_cast<double>(kmax)));
  auto X = [&](int64_t k) { return left + pw * std::log2(static_cast<double>(k)) / lmax; };
  auto Y = [&](double v) { return top + ph * (1.0 - std::clamp(v, 0.0, 1.0)); };

  std::string s = svg_open(width, height, left + pw / 2, title);
  // y grid, ticks and labels: 0, 0.2, ..., 1
  for (int i = 0; i <= 5; ++i) {
    double v = i / 5.0, y = Y(v);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n", left, y,
                     left + pw, y);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n", left - 5, y,
                     left, y);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.1f}</text>\n", left - 8, y + 4, v);
  }
  // x ticks at powers of two (and kmax)
  std::vector<int64_t> xt;
  for (int64_t k = 1; k <= kmax; k *= 2) xt.push_back(k);
  if (xt.back() != kmax) xt.push_back(kmax);
  for (int64_t k : xt) {
    double x = X(k);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/>\n", x, top, x,
                     top + ph);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n", x, top + ph,
                     x, top + ph + 5);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x, top + ph + 18, k);
  }
  // axes and their labels
  s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"black\"/>\n", left, top,
                   top + ph);
  s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"black\"/>\n", left,
                   top + ph, left + pw);
  s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">k (log scale)</text>\n", left + pw / 2,
                   static_cast<double>(height) - 12);
  s += fmt::format(
      "<text x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">pass@k</text>\n",
      top + ph / 2);
  // curves
  auto colour = [](size_t i) { return svg_colour(i); };
  for (size_t i = 0; i < curves.size(); ++i) {
    std::string pts;
    for (auto& [k, v] : curves[i].points) pts += fmt::format("{:.1f},{:.1f} ", X(k), Y(v));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", colour(i), pts);
    for (auto& [k, v] : curves[i].points)
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", X(k), Y(v), colour(i));
  }
  // legend on top, lower right (pass@k curves rise towards the upper right)
  if (!curves.empty()) {
    const double legend_h = 18.0 * static_cast<double>(curves.size()) + 8;
    const double legend_top = top + ph - legend_h - 6;
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"200\" height=\"{:.1f}\" fill=\"white\" fill-opacity=\"0.85\" "
        "stroke=\"#ccc\"/>\n",
        left + pw - 206, legend_top, legend_h);
    for (size_t i = 0; i < curves.size(); ++i) {
      double ly = legend_top + 18 + 18 * static_cast<double>(i);
      s += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>\n",
          left + pw - 196, ly - 4, left + pw - 172, ly - 4, colour(i));
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", left + pw - 166, ly,
                       svg_escape(curves[i].label));
    }
  }
  s += "</svg>\n";
  return s;
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
