#include "diffusion/world.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace prefopt::diffusion {

namespace {
const char* kColourNames[kColours] = {"red", "green", "blue", "yellow"};
const char* kShapeNames[kShapes] = {"square", "circle", "triangle"};
const char* kRelationText[kRelations] = {"left of", "right of", "above", "below"};
}  // namespace

const char* colour_name(int c) { return kColourNames[c]; }
const char* shape_name(int s) { return kShapeNames[s]; }
const char* relation_text(int r) { return kRelationText[r]; }

std::array<float, 3> colour_rgb(int c) {
  static const std::array<float, 3> rgb[kColours] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}};
  return rgb[c];
}

std::string caption_text(const Caption& c) {
  return fmt::format("a {} {} {} a {} {}", kColourNames[c.c1], kShapeNames[c.s1], kRelationText[c.rel],
                     kColourNames[c.c2], kShapeNames[c.s2]);
}

Caption parse_caption(const std::string& text) {
  for (const auto& c : all_captions())
    if (caption_text(c) == text) return c;
  fail("caption '" + text + "'", "is not a caption of the grammar 'a COLOUR SHAPE RELATION a COLOUR SHAPE'",
       "colours red/green/blue/yellow (two different), shapes square/circle/triangle, relations "
       "'left of', 'right of', 'above', 'below'");
}

Caption random_caption(Rng& rng) {
  Caption c;
  c.c1 = static_cast<int>(rng.below(kColours));
  c.c2 = static_cast<int>(rng.below(kColours - 1));
  if (c.c2 >= c.c1) ++c.c2;
  c.s1 = static_cast<int>(rng.below(kShapes));
  c.s2 = static_cast<int>(rng.below(kShapes));
  c.rel = static_cast<int>(rng.below(kRelations));
  return c;
}

std::vector<Caption> all_captions() {
  std::vector<Caption> out;
  for (int c1 = 0; c1 < kColours; ++c1)
    for (int c2 = 0; c2 < kColours; ++c2) {
      if (c1 == c2) continue;
      for (int s1 = 0; s1 < kShapes; ++s1)
        for (int s2 = 0; s2 < kShapes; ++s2)
          for (int r = 0; r < kRelations; ++r) out.push_back(Caption{c1, s1, r, c2, s2});
    }
  return out;
}

const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> v = {"<pad>", "a",      "red",      "green", "blue",  "yellow", "square",
                                             "circle", "triangle", "left", "right", "of",   "above",  "below"};
  return v;
}

std::vector<int64_t> tokenize_caption(const std::string& text) {
  const auto& v = vocabulary();
  std::vector<int64_t> ids;
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    int64_t id = -1;
    for (size_t i = 1; i < v.size(); ++i)
      if (v[i] == w) id = static_cast<int64_t>(i);
    PREFOPT_REQUIRE(id > 0, "caption '" + text + "'", "unknown word '" + w + "'", "use the words of the grammar");
    ids.push_back(id);
  }
  PREFOPT_REQUIRE(ids.size() <= static_cast<size_t>(kTokens), "caption '" + text + "'",
                  fmt::format("{} words, at most {}", ids.size(), kTokens), "shorten the caption");
  ids.resize(kTokens, 0);
  return ids;
}

std::vector<int64_t> empty_caption_tokens() { return std::vector<int64_t>(kTokens, 0); }

std::vector<uint8_t> shape_mask(int shape, int s) {
  std::vector<uint8_t> m(static_cast<size_t>(s * s), 0);
  const double c = (s - 1) / 2.0;
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const double dx = x - c, dy = y - c;
      bool on = false;
      if (shape == 0) on = true;                                          // square: the whole box
      if (shape == 1) on = dx * dx + dy * dy <= (s / 2.0) * (s / 2.0) - s / 4.0;  // circle
      if (shape == 2) on = std::abs(dx) <= (y + 1) / 2.0;                  // triangle, apex up
      m[static_cast<size_t>(y * s + x)] = on ? 1 : 0;
    }
  return m;
}

Layout random_layout(const Caption& c, Rng& rng) {
  auto rnd = [&](int lo, int hi) { return lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1))); };
  Layout l{};
  l.size1 = rnd(6, 7);
  l.size2 = rnd(6, 7);
  // Along the relation's axis: the first-placed object near the start, the
  // other after a gap of at least one pixel. Across it: a shared offset with
  // a jitter of up to two pixels each.
  const bool horizontal = c.rel == kLeftOf || c.rel == kRightOf;
  const bool first_is_1 = c.rel == kLeftOf || c.rel == kAbove;  // object 1 comes first (left / top)
  const int sa = first_is_1 ? l.size1 : l.size2, sb = first_is_1 ? l.size2 : l.size1;
  const int a = rnd(0, std::min(2, kImage - sa - sb - 1));
  const int b = rnd(a + sa + 1, kImage - sb);
  const int smax = std::max(l.size1, l.size2);
  const int across = rnd(2, kImage - smax - 2);
  auto clamp = [](int v, int s) { return std::max(0, std::min(kImage - s, v)); };
  const int ca = clamp(across + rnd(-2, 2), sa), cb = clamp(across + rnd(-2, 2), sb);
  int p1a = first_is_1 ? a : b, p2a = first_is_1 ? b : a;
  int p1c = first_is_1 ? ca : cb, p2c = first_is_1 ? cb : ca;
  if (horizontal) {
    l.x1 = p1a, l.x2 = p2a, l.y1 = p1c, l.y2 = p2c;
  } else {
    l.y1 = p1a, l.y2 = p2a, l.x1 = p1c, l.x2 = p2c;
  }
  return l;
}

Image render(const Caption& c, const Layout& l) {
  Image img(static_cast<size_t>(kImage * kImage * 3), 0.0f);
  auto draw = [&](int colour, int shape, int x0, int y0, int s) {
    const auto m = shape_mask(shape, s);
    const auto rgb = colour_rgb(colour);
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x) {
        if (!m[static_cast<size_t>(y * s + x)]) continue;
        const int px = x0 + x, py = y0 + y;
        if (px < 0 || py < 0 || px >= kImage || py >= kImage) continue;
        for (int k = 0; k < 3; ++k) img[static_cast<size_t>((py * kImage + px) * 3 + k)] = rgb[k];
      }
  };
  draw(c.c1, c.s1, l.x1, l.y1, l.size1);
  draw(c.c2, c.s2, l.x2, l.y2, l.size2);
  return img;
}

Image render(const Caption& c, Rng& rng) { return render(c, random_layout(c, rng)); }

}  // namespace prefopt::diffusion
