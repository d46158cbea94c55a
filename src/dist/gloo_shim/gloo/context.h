// Declarations-only stand-in (see gloo/algorithm.h here).
#pragma once
namespace gloo {
class Context;
}  // namespace gloo
