#include "diffusion/perturb.h"

#include "core/error.h"

namespace prefopt::diffusion {

const char* perturbation_name(int p) {
  static const char* names[kPerturbations] = {"swap_colours", "change_colour", "change_shape", "flip_relation"};
  return names[p];
}

Caption perturb(const Caption& c, int p, Rng& rng) {
  Caption o = c;
  switch (p) {
    case kSwapColours:  // binding: the same words, attached to the other object
      std::swap(o.c1, o.c2);
      break;
    case kChangeColour: {  // a colour that neither object has
      int& target = rng.below(2) == 0 ? o.c1 : o.c2;
      std::vector<int> free;
      for (int k = 0; k < kColours; ++k)
        if (k != c.c1 && k != c.c2) free.push_back(k);
      target = free[rng.below(free.size())];
      break;
    }
    case kChangeShape: {
      int& target = rng.below(2) == 0 ? o.s1 : o.s2;
      target = (target + 1 + static_cast<int>(rng.below(kShapes - 1))) % kShapes;
      break;
    }
    case kFlipRelation:
      o.rel = c.rel ^ 1;  // left <-> right, above <-> below
      break;
    default:
      PREFOPT_ASSERT(false, "perturbation {} unknown", p);
  }
  return o;
}

Caption random_perturbation(const Caption& c, Rng& rng, int* type) {
  const int p = static_cast<int>(rng.below(kPerturbations));
  if (type) *type = p;
  return perturb(c, p, rng);
}

}  // namespace prefopt::diffusion
