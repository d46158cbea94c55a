#include "core/stats.h"

#include <cmath>

namespace prefopt {

std::pair<double, double> mean_and_stderr(const std::vector<double>& d) {
  if (d.size() < 2) return {d.empty() ? 0.0 : d[0], 0.0};
  double m = 0, v = 0;
  for (double x : d) m += x;
  m /= static_cast<double>(d.size());
  for (double x : d) v += (x - m) * (x - m);
  return {m, std::sqrt(v / static_cast<double>(d.size() - 1) / static_cast<double>(d.size()))};
}

}  // namespace prefopt
