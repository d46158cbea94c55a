// prefopt diffusion: the exact checker. An image is quantised to the palette
// (or background), split into 4-connected components per colour, each large
// component is classified as a shape by two box features (fill ratio and the
// vertical offset of its centroid), and the relation between the two objects
// is read from their centroids along the dominant axis.
#pragma once
#include <string>
#include <vector>

#include "diffusion/world.h"

namespace prefopt::diffusion {

// An object found in an image.
struct FoundObject {
  int colour = -1;
  int shape = -1;  // -1: not a recognised shape
  int pixels = 0;
  double cx = 0, cy = 0;         // centroid (pixels)
  double fill = 0, offset = 0;   // shape features
};

struct CheckResult {
  bool two_objects = false;  // exactly two objects, of different colours, each a recognised shape
  bool match = false;        // two_objects, and they are the caption's (colour, shape) pairs in its relation
  std::vector<FoundObject> objects;
};

constexpr int kMinObjectPixels = 10;  // smaller components are noise (an object has >= 24 pixels)

// Palette index of a pixel (0..kColours-1), or -1 for background.
int quantise(float r, float g, float b);
// Shape from the features: triangle if the centroid sits low in the box
// (offset >= 0.1), else square if fill >= 0.86, else circle if fill >= 0.5, else -1.
int classify_shape(double fill, double offset);
std::vector<FoundObject> find_objects(const Image& img);
CheckResult check(const Image& img, const Caption& c);

}  // namespace prefopt::diffusion
