// prefopt diffusion: the checkable world. Two objects on a black 16x16 RGB
// canvas, each a colour and a shape, in a spatial relation; a caption of a
// fixed grammar ("a red square left of a blue circle") describes one scene.
// The renderer is exact with seeded jitter of positions and sizes; captions
// tokenize to a fixed-length id sequence for the text encoder.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"

namespace prefopt::diffusion {

constexpr int kImage = 16;     // image side in pixels
constexpr int kColours = 4;    // red, green, blue, yellow
constexpr int kShapes = 3;     // square, circle, triangle
constexpr int kRelations = 4;  // left of, right of, above, below
constexpr int kTokens = 8;     // caption length in tokens (padded)

enum Relation { kLeftOf = 0, kRightOf = 1, kAbove = 2, kBelow = 3 };

const char* colour_name(int c);
const char* shape_name(int s);
const char* relation_text(int r);  // "left of", "right of", "above", "below"
// The palette in [0,1] (RGB); background is black.
std::array<float, 3> colour_rgb(int c);

// "a C1 S1 REL a C2 S2": object 1 (c1, s1) stands in relation rel to object 2.
// The two colours always differ (so every colour names one object).
struct Caption {
  int c1 = 0, s1 = 0, rel = 0, c2 = 1, s2 = 0;
  bool operator==(const Caption& o) const {
    return c1 == o.c1 && s1 == o.s1 && rel == o.rel && c2 == o.c2 && s2 == o.s2;
  }
  bool operator!=(const Caption& o) const { return !(*this == o); }
};

std::string caption_text(const Caption& c);
// Parses a caption of the grammar; throws prefopt::Error naming the text otherwise.
Caption parse_caption(const std::string& text);
// A uniformly random caption (c1 != c2).
Caption random_caption(Rng& rng);
// Every caption of the grammar (4*3 colour pairs x 3*3 shapes x 4 relations = 432).
std::vector<Caption> all_captions();

// The word vocabulary; id 0 is padding, and the all-padding sequence is the
// empty caption of classifier-free guidance.
const std::vector<std::string>& vocabulary();
// Word ids of `text`, padded with 0 to kTokens; throws on an unknown word.
std::vector<int64_t> tokenize_caption(const std::string& text);
std::vector<int64_t> empty_caption_tokens();

// A shape's pixel mask in an s x s box (row-major, s*s entries), s in [5, 8].
std::vector<uint8_t> shape_mask(int shape, int size);

// Where the two objects lie: top-left corners and sizes.
struct Layout {
  int x1, y1, size1, x2, y2, size2;
};
// A random layout satisfying the caption's relation (seeded jitter).
Layout random_layout(const Caption& c, Rng& rng);

// An image: kImage*kImage*3 floats in [0,1], HWC order.
using Image = std::vector<float>;
Image render(const Caption& c, const Layout& l);
Image render(const Caption& c, Rng& rng);  // random_layout + render

}  // namespace prefopt::diffusion
