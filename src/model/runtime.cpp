#include "model/runtime.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>

namespace prefopt {

void configure_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN)));
  at::set_num_threads(n);
}

}  // namespace prefopt
