// prefopt verify: pass@k curves as a picture. A small SVG writer of our own:
// log2-k x axis, pass@k y axis from 0 to 1, one polyline and legend entry per
// curve (e.g. base vs trained), axes with ticks and labels. PNG conversion
// uses rsvg-convert or ImageMagick's convert when one is installed.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace prefopt {

struct PassKCurve {
  std::string label;                          // legend text (usually the file name)
  std::vector<std::pair<int64_t, double>> points;  // (k, mean pass@k), k ascending
};

// Shared by prefopt's SVG pictures (this one and pipeline/report.h): text
// escaped for SVG/XML, and the i-th of the Okabe-Ito colours (repeating).
std::string svg_escape(const std::string& s);
const char* svg_colour(size_t i);
// The opening <svg> element, a white background and the centred title.
std::string svg_open(int width, int height, double title_x, const std::string& title);

// The SVG document (width x height pixels).
std::string passk_svg(const std::vector<PassKCurve>& curves, const std::string& title, int width = 640,
                      int height = 420);

// Converts an SVG file to PNG with the first available converter
// (rsvg-convert, then convert). Returns the converter used, or "" when none is
// installed or it failed (the PNG is then not written). The PNG is written
// atomically (temp file + rename).
std::string svg_to_png(const std::string& svg_path, const std::string& png_path);

}  // namespace prefopt
