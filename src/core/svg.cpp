// The SVG line chart shared by every prefopt picture (see svg.h).
#include "core/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace prefopt {

namespace {

// 1, 2 or 5 times a power of ten, about span/target.
double nice_step(double span, int target) {
  double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;  // no "-0" or "1e-17"
  return fmt::format("{:g}", v);
}

// The opening <svg> element, a white background and the centred title.
std::string svg_open(int width, int height, double title_x, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{:.1f}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
      width, height, width, height, title_x, svg_escape(title));
}

}  // namespace

std::string svg_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* svg_colour(size_t i) {
  static const char* const kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};
  return kColours[i % (sizeof kColours / sizeof *kColours)];
}

std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Series>& series, bool log2_x, int width, int height) {
  ChartStyle st;
  st.log2_x = log2_x, st.width = width, st.height = height;
  return svg_line_chart(title, xlabel, ylabel, series, st);
}

std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Series>& series, const ChartStyle& style) {
  const bool log2_x = style.log2_x;
  const int width = style.width, height = style.height;
  const double left = 64, right = 16, top = 36, bottom = 48;
  const double pw = width - left - right, ph = height - top - bottom;
  // Drawable points in plot space (x already log2 when asked).
  std::vector<std::vector<std::pair<double, double>>> pts(series.size());
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& se = series[s];
    for (size_t i = 0; i < std::min(se.x.size(), se.y.size()); ++i) {
      double x = se.x[i], y = se.y[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (log2_x && x <= 0)) continue;
      pts[s].emplace_back(log2_x ? std::log2(x) : x, y);
    }
  }
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (auto& p : pts)
    for (auto [x, y] : p) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  const bool empty = !(xmin <= xmax);
  if (empty) xmin = 0, xmax = 1, ymin = 0, ymax = 1;

  // x axis: integer exponents on a log2 axis, nice steps otherwise.
  double xstep;
  if (log2_x) {
    xmin = std::floor(xmin), xmax = std::ceil(xmax);
    if (xmax == xmin) xmax = xmin + 1;
    xstep = std::ceil((xmax - xmin) / 8);
  } else {
    if (xmax == xmin) xmin -= xmin == 0 ? 1 : std::fabs(xmin) * 0.1, xmax += xmax == 0 ? 1 : std::fabs(xmax) * 0.1;
    xstep = nice_step(xmax - xmin, 6);
    xmin = std::floor(xmin / xstep) * xstep, xmax = std::ceil(xmax / xstep) * xstep;
  }
  double ystep;
  if (style.fixed_y) {
    ymin = style.y_lo, ymax = style.y_hi, ystep = nice_step(ymax - ymin, 5);
  } else {
    if (ymax == ymin) ymin -= ymin == 0 ? 1 : std::fabs(ymin) * 0.1, ymax += ymax == 0 ? 1 : std::fabs(ymax) * 0.1;
    ystep = nice_step(ymax - ymin, 5);
    ymin = std::floor(ymin / ystep) * ystep, ymax = std::ceil(ymax / ystep) * ystep;
  }
  auto X = [&](double x) { return left + pw * (x - xmin) / (xmax - xmin); };
  auto Y = [&](double y) { return top + ph * (1.0 - std::clamp((y - ymin) / (ymax - ymin), 0.0, 1.0)); };

  std::string s = svg_open(width, height, left + pw / 2, title);
  const char* line = "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\"/>\n";
  for (int64_t i = std::llround(ymin / ystep); i * ystep <= ymax + ystep * 1e-9; ++i) {
    double v = i * ystep, y = Y(v);
    s += fmt::format(line, left, y, left + pw, y, "#ddd");
    s += fmt::format(line, left - 5, y, left, y, "black");
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 8, y + 4,
                     tick_label(v, ystep));
  }
  for (int64_t i = std::llround(xmin / xstep); i * xstep <= xmax + xstep * 1e-9; ++i) {
    double v = i * xstep, x = X(v);
    s += fmt::format(line, x, top, x, top + ph, "#eee");
    s += fmt::format(line, x, top + ph, x, top + ph + 5, "black");
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x, top + ph + 18,
                     log2_x ? tick_label(std::exp2(v), 1e-300) : tick_label(v, xstep));
  }
  s += fmt::format(line, left, top, left, top + ph, "black");
  s += fmt::format(line, left, top + ph, left + pw, top + ph, "black");
  s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}{}</text>\n", left + pw / 2, height - 10.0,
                   svg_escape(xlabel), log2_x ? " (log2 scale)" : "");
  s += fmt::format(
      "<text x=\"16\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0:.1f})\">{1}</text>\n",
      top + ph / 2, svg_escape(ylabel));
  if (empty)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                     left + pw / 2, top + ph / 2);
  // One polyline per series with points.
  for (size_t k = 0; k < series.size(); ++k) {
    if (pts[k].empty()) continue;
    const char* c = svg_colour(k);
    std::string p;
    for (auto [x, y] : pts[k]) p += fmt::format("{}{:.1f},{:.1f}", p.empty() ? "" : " ", X(x), Y(y));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n", c, p);
    if (pts[k].size() <= 32)
      for (auto [x, y] : pts[k])
        s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", X(x), Y(y), c);
  }
  // Legend inside the plot, in the corner (top right, top left, bottom right, bottom left) that
  // covers the fewest points.
  if (!series.empty()) {
    size_t chars = 0;
    for (size_t k = 0; k < series.size(); ++k)
      chars = std::max(chars, series[k].label.size() + (pts[k].empty() ? 10 : 0));
    double lw = 34 + 7.0 * static_cast<double>(chars), lh = 16.0 * static_cast<double>(series.size()) + 6, lx = 0,
           ly = 0;
    size_t best = SIZE_MAX;
    for (int corner = 0; corner < 4; ++corner) {
      double cx = corner % 2 == 0 ? left + pw - lw - 6 : left + 6, cy = corner < 2 ? top + 6 : top + ph - lh - 6;
      size_t covered = 0;
      for (auto& p : pts)
        for (auto [x, y] : p) covered += X(x) >= cx && X(x) <= cx + lw && Y(y) >= cy && Y(y) <= cy + lh;
      if (covered < best) best = covered, lx = cx, ly = cy;
    }
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"white\" fill-opacity=\"0.85\" "
        "stroke=\"#ccc\"/>\n",
        lx, ly, lw, lh);
    for (size_t k = 0; k < series.size(); ++k) {
      double y = ly + 14 + 16.0 * static_cast<double>(k);
      s += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>\n", lx + 6,
          y - 4, lx + 24, y - 4, svg_colour(k));
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}{}</text>\n", lx + 28, y, svg_escape(series[k].label),
                       pts[k].empty() ? " (no data)" : "");
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace prefopt
