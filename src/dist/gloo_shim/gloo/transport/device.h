// Declarations-only stand-in (see gloo/algorithm.h here).
#pragma once
namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo
