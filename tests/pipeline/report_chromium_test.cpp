// report.html in a real browser: headless Chromium renders a report made from the synthetic
// fixture run. Checks: exit status 0, a PNG of the window size (1200 x 2400) that is not blank and
// shows the charts' colours, and in the rendered DOM (--dump-dom) the seven inline SVG charts with
// their polylines and the tables. The screenshot is kept as BUILD/report_screenshot.png (the one
// in docs/ is a copy). Skipped, with a message, only when chromium is not installed.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/run_cli.h"
#include "core/fs.h"
#include "pipeline/report.h"
#include "pipeline/report_fixture.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

std::string find_chromium() {
  if (const char* e = std::getenv("PREFOPT_CHROMIUM")) return e;
  for (const char* name : {"chromium", "chromium-browser"})
    if (std::string c = prefopt::find_in_path(name); !c.empty()) return c;
  return "";
}

struct Image {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
};

uint32_t be32(const std::string& s, size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 | uint32_t(uint8_t(s[at + 2])) << 8 |
         uint32_t(uint8_t(s[at + 3]));
}

// A small PNG decoder for what Chromium writes: 8-bit RGB or RGBA, not interlaced. Returns
// an empty image (and sets *why) otherwise.
Image decode_png(const std::string& png, std::string* why) {
  Image img;
  if (png.size() < 33 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return *why = "not a PNG signature", img;
  std::string idat;
  int depth = 0, colour = 0, interlace = 0;
  for (size_t p = 8; p + 12 <= png.size();) {
    uint32_t len = be32(png, p);
    std::string type = png.substr(p + 4, 4);
    if (p + 12 + len > png.size()) return *why = "truncated chunk " + type, img;
    if (type == "IHDR") {
      img.width = be32(png, p + 8), img.height = be32(png, p + 12);
      depth = uint8_t(png[p + 16]), colour = uint8_t(png[p + 17]), interlace = uint8_t(png[p + 20]);
    } else if (type == "IDAT") {
      idat += png.substr(p + 8, len);
    }
    p += 12 + len;
  }
  if (depth != 8 || (colour != 2 && colour != 6) || interlace != 0)
    return *why = "unsupported PNG: depth " + std::to_string(depth) + ", colour type " + std::to_string(colour), img;
  const size_t bpp = colour == 6 ? 4 : 3, stride = img.width * bpp;
  std::vector<uint8_t> raw((stride + 1) * img.height);
  uLongf n = raw.size();
  if (uncompress(raw.data(), &n, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK || n != raw.size())
    return *why = "zlib could not inflate the image data", img;
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  img.rgb.reserve(size_t(img.width) * img.height * 3);
  for (uint32_t y = 0; y < img.height; ++y) {
    const uint8_t* in = raw.data() + y * (stride + 1);
    const int filter = in[0];
    for (size_t i = 0; i < stride; ++i) {
      int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0, x = in[1 + i];
      switch (filter) {
        case 0: break;
        case 1: x += a; break;
        case 2: x += b; break;
        case 3: x += (a + b) / 2; break;
        case 4: {
          int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
          x += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: return *why = "bad PNG filter " + std::to_string(filter), Image{};
      }
      cur[i] = uint8_t(x);
    }
    for (size_t i = 0; i < stride; i += bpp) img.rgb.insert(img.rgb.end(), cur.begin() + i, cur.begin() + i + 3);
    std::swap(prev, cur);
  }
  return img;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(ReportChromium, RendersWithChartsAndScreenshot) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (Debian package `chromium`): report.html not checked in a browser";
  const std::string tmp = (fs::temp_directory_path() / fmt::format("prefopt_report_chromium_{}", getpid())).string();
  fs::remove_all(tmp);
  const std::string run = tmp + "/run";
  prefopt::testing::write_report_fixture(run);
  pipeline::write_report(run);
  const std::string html = read_file(run + "/report.html");

  // Root needs --no-sandbox; a fresh profile per run; dbus/GPU warnings go to the log.
  const std::string common = chromium + " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
                             "--hide-scrollbars --no-first-run --user-data-dir=" + tmp + "/profile " +
                             "--window-size=1200,2400 ";
  const std::string url = "file://" + run + "/report.html";
  int rc = -1;
  prefopt::testing::popen_read("timeout 180 " + common + "--screenshot=" + tmp + "/shot.png " + url + " >" + tmp +
                          "/shot.log 2>&1",
                      &rc);
  ASSERT_EQ(rc, 0) << read_file(tmp + "/shot.log");
  ASSERT_TRUE(file_exists(tmp + "/shot.png")) << read_file(tmp + "/shot.log");
  std::string why;
  Image img = decode_png(read_file(tmp + "/shot.png"), &why);
  ASSERT_EQ(why, "");
  EXPECT_EQ(img.width, 1200u);
  EXPECT_EQ(img.height, 2400u);
  ASSERT_EQ(img.rgb.size(), size_t(img.width) * img.height * 3);
  // Not blank: many colours, a fair share of non-white pixels, and the charts' first two series
  // colours (#0072B2 blue, #D55E00 orange) drawn in solid pixels.
  std::set<uint32_t> colours;
  size_t non_white = 0, blue = 0, orange = 0;
  auto near = [](const uint8_t* p, int r, int g, int b) {
    return std::abs(p[0] - r) <= 3 && std::abs(p[1] - g) <= 3 && std::abs(p[2] - b) <= 3;
  };
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    const uint8_t* p = &img.rgb[i];
    colours.insert(uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]);
    non_white += p[0] < 240 || p[1] < 240 || p[2] < 240;
    blue += near(p, 0x00, 0x72, 0xB2);
    orange += near(p, 0xD5, 0x5E, 0x00);
  }
  const double frac = double(non_white) / double(img.width * img.height);
  EXPECT_GT(colours.size(), 50u);
  EXPECT_GT(frac, 0.01);
  EXPECT_LT(frac, 0.9);
  EXPECT_GT(blue, 200u) << "no solid #0072B2 pixels: the charts' first series are not drawn";
  EXPECT_GT(orange, 200u) << "no solid #D55E00 pixels: the charts' second series are not drawn";
  std::printf("screenshot %ux%u: %zu colours, %.1f%% non-white, %zu blue and %zu orange pixels\n", img.width,
              img.height, colours.size(), 100 * frac, blue, orange);
  fs::copy_file(tmp + "/shot.png", PREFOPT_BINARY_DIR "/report_screenshot.png", fs::copy_options::overwrite_existing);

  // The DOM Chromium built: the seven charts (report.md's four, one per round), every polyline
  // of the file, the tables, the title.
  std::string dom = prefopt::testing::popen_read("timeout 180 " + common + "--dump-dom " + url + " 2>" + tmp + "/dom.log", &rc);
  ASSERT_EQ(rc, 0) << read_file(tmp + "/dom.log");
  EXPECT_EQ(count(dom, "<svg "), 7u);
  EXPECT_EQ(count(dom, "<polyline "), count(html, "<polyline "));
  EXPECT_EQ(count(dom, "<polyline "), 17u);
  EXPECT_EQ(count(dom, "<script"), 0u);
  for (auto cls : {"rounds", "gains", "passk", "config"})
    EXPECT_NE(dom.find(fmt::format("<table class=\"{}\">", cls)), std::string::npos) << cls;
  EXPECT_NE(dom.find("<title>prefopt report: dpo</title>"), std::string::npos);
  EXPECT_NE(dom.find("pass@1 rose from 0.062 (sft) to 0.133 (round2)"), std::string::npos);
  fs::remove_all(tmp);
}
