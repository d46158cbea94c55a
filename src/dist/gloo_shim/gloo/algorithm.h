// Declarations-only stand-in for Gloo's header, for builds where libtorch's
// ProcessGroupGloo.hpp is installed but Gloo's own headers are not (Debian
// ships libgloo0 without libgloo-dev). prefopt never touches these types: it
// only needs ProcessGroupGloo.hpp to parse; every object is made inside
// libtorch. Used only when the real <gloo/algorithm.h> is not found.
#pragma once
#include "gloo/context.h"
