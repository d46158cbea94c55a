#include "diffusion/checker.h"

#include <algorithm>
#include <cmath>

namespace prefopt::diffusion {

int quantise(float r, float g, float b) {
  // Nearest palette colour; background when black is at least as near.
  int best = -1;
  float best_d = r * r + g * g + b * b;
  for (int c = 0; c < kColours; ++c) {
    const auto p = colour_rgb(c);
    const float d = (r - p[0]) * (r - p[0]) + (g - p[1]) * (g - p[1]) + (b - p[2]) * (b - p[2]);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

int classify_shape(double fill, double offset) {
  if (offset >= 0.1) return 2;
  if (fill >= 0.86) return 0;
  if (fill >= 0.5) return 1;
  return -1;
}

std::vector<FoundObject> find_objects(const Image& img) {
  const int n = kImage * kImage;
  std::vector<int> q(static_cast<size_t>(n)), label(static_cast<size_t>(n), -1);
  for (int i = 0; i < n; ++i) q[i] = quantise(img[i * 3], img[i * 3 + 1], img[i * 3 + 2]);
  std::vector<FoundObject> out;
  std::vector<int> stack;
  int next = 0;
  for (int start = 0; start < n; ++start) {
    if (q[start] < 0 || label[start] >= 0) continue;
    // Flood fill (4-connectivity) of one colour.
    int count = 0, xmin = kImage, xmax = -1, ymin = kImage, ymax = -1;
    double sx = 0, sy = 0;
    stack.assign(1, start);
    label[start] = next;
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      const int x = p % kImage, y = p / kImage;
      ++count, sx += x, sy += y;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
      const int nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
      for (const auto& v : nb) {
        if (v[0] < 0 || v[1] < 0 || v[0] >= kImage || v[1] >= kImage) continue;
        const int j = v[1] * kImage + v[0];
        if (label[j] < 0 && q[j] == q[start]) label[j] = next, stack.push_back(j);
      }
    }
    ++next;
    if (count < kMinObjectPixels) continue;
    FoundObject o;
    o.colour = q[start];
    o.pixels = count;
    o.cx = sx / count, o.cy = sy / count;
    const int w = xmax - xmin + 1, h = ymax - ymin + 1;
    o.fill = static_cast<double>(count) / (w * h);
    o.offset = (o.cy - (ymin + ymax) / 2.0) / (h / 2.0);
    o.shape = classify_shape(o.fill, o.offset);
    out.push_back(o);
  }
  return out;
}

CheckResult check(const Image& img, const Caption& c) {
  CheckResult r;
  r.objects = find_objects(img);
  if (r.objects.size() != 2) return r;
  const auto& a = r.objects[0];
  const auto& b = r.objects[1];
  r.two_objects = a.colour != b.colour && a.shape >= 0 && b.shape >= 0;
  if (!r.two_objects) return r;
  const FoundObject* o1 = a.colour == c.c1 ? &a : b.colour == c.c1 ? &b : nullptr;
  const FoundObject* o2 = a.colour == c.c2 ? &a : b.colour == c.c2 ? &b : nullptr;
  if (!o1 || !o2 || o1 == o2 || o1->shape != c.s1 || o2->shape != c.s2) return r;
  const double dx = o2->cx - o1->cx, dy = o2->cy - o1->cy;  // image y grows downwards
  bool rel = false;
  switch (c.rel) {
    case kLeftOf: rel = dx > 0 && std::abs(dx) > std::abs(dy); break;
    case kRightOf: rel = dx < 0 && std::abs(dx) > std::abs(dy); break;
    case kAbove: rel = dy > 0 && std::abs(dy) > std::abs(dx); break;
    case kBelow: rel = dy < 0 && std::abs(dy) > std::abs(dx); break;
  }
  r.match = rel;
  return r;
}

}  // namespace prefopt::diffusion
