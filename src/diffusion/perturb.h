// prefopt diffusion: rule-based caption perturbations. Each returns a valid
// caption of the grammar that is false for every scene of the original
// caption, so the preferred/dispreferred pair differs only in meaning.
#pragma once
#include <string>

#include "diffusion/world.h"

namespace prefopt::diffusion {

enum Perturbation { kSwapColours = 0, kChangeColour = 1, kChangeShape = 2, kFlipRelation = 3 };
constexpr int kPerturbations = 4;
const char* perturbation_name(int p);  // swap_colours, change_colour, change_shape, flip_relation

// Applies perturbation `p` (random choices, e.g. which object, from rng).
Caption perturb(const Caption& c, int p, Rng& rng);
// A perturbation type drawn uniformly, applied; *type gets it.
Caption random_perturbation(const Caption& c, Rng& rng, int* type);

}  // namespace prefopt::diffusion
