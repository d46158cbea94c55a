// prefopt dist: builds whose libtorch has no c10d headers. A run with
// WORLD_SIZE > 1 stops with an Error saying so.
#include "dist/backend.h"

#include "core/error.h"

namespace prefopt::dist::detail {

std::unique_ptr<Backend> make_backend(const Env& e, std::chrono::milliseconds) {
  fail("WORLD_SIZE", "is " + std::to_string(e.world_size) + ", but this prefopt was built without c10d",
       "build against a libtorch that ships torch/csrc/distributed/c10d (Debian's libtorch-dev does), or run one rank");
}

}  // namespace prefopt::dist::detail
