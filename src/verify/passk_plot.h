// prefopt verify: pass@k curves as a picture, drawn by the shared SVG line chart
// (core/svg.h): log2-k x axis, pass@k y axis from 0 to 1, one polyline and legend
// entry per curve (e.g. base vs trained). PNG conversion uses rsvg-convert or
// ImageMagick's convert when one is installed.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/svg.h"

namespace prefopt {

struct PassKCurve {
  std::string label;                          // legend text (usually the file name)
  std::vector<std::pair<int64_t, double>> points;  // (k, mean pass@k), k ascending
};

// The SVG document (width x height pixels).
std::string passk_svg(const std::vector<PassKCurve>& curves, const std::string& title, int width = 640,
                      int height = 420);

// Converts an SVG file to PNG with the first available converter
// (rsvg-convert, then convert). Returns the converter used, or "" when none is
// installed or it failed (the PNG is then not written). The PNG is written
// atomically (temp file + rename).
std::string svg_to_png(const std::string& svg_path, const std::string& png_path);

}  // namespace prefopt
