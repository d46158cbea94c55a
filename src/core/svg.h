// prefopt core: the one SVG drawing module. Hand-written SVG (no plotting library) for every
// picture prefopt makes: `prefopt passk`, the demo/iterate report (report.md's SVG files and the
// SVGs inlined in report.html) and compare-runs.
//
// svg_line_chart draws a self-contained line chart: title, axes with ticks and labels, light grid,
// one polyline + legend entry per series (a series with no drawable point gets a legend entry
// "<label> (no data)" and no polyline; series with at most 32 points also get a dot per point).
// x axis: linear with 1-2-5 steps, or log2 (ticks at powers of two, x <= 0 skipped). y axis: fitted
// to the data with 1-2-5 steps, or a fixed range (e.g. [0, 1] for pass@k). NaN/inf points are
// skipped. The legend sits inside the plot, in the corner covering the fewest points. Text is
// escaped. Deterministic: the same input gives the same bytes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace prefopt {

struct Series {
  std::string label;
  std::vector<double> x, y;  // same length; (x[i], y[i]) drawn in the given order
};

struct ChartStyle {
  bool log2_x = false;
  bool fixed_y = false;  // when true the y axis spans [y_lo, y_hi] and points are clamped to it
  double y_lo = 0, y_hi = 1;
  int width = 640, height = 400;
};

std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Series>& series, const ChartStyle& style);
std::string svg_line_chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                           const std::vector<Series>& series, bool log2_x = false, int width = 640,
                           int height = 400);

// Text escaped for XML/SVG/HTML content and attribute values: & < > " '.
std::string svg_escape(const std::string& s);
// The i-th of the Okabe-Ito colours (repeating).
const char* svg_colour(size_t i);

}  // namespace prefopt
