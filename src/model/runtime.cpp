#include "model/runtime.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.h"

namespace prefopt {

void configure_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN)));
  at::set_num_threads(n);
}

double measure_sgemm_gflops(int n, int reps) {
  auto a = at::randn({n, n}), b = at::randn({n, n});
  auto c = at::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    double t = now_seconds();
    at::mm_out(c, a, b);
    best = std::min(best, now_seconds() - t);
  }
  return 2.0 * n * n * n / best / 1e9;
}

}  // namespace prefopt
