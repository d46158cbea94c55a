#include "verify/passk.h"

#include "core/error.h"

namespace prefopt {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  PREFOPT_CHECK(n >= 0 && c >= 0 && c <= n, "pass@k: need 0 <= c <= n, got n={} c={}", n, c);
  PREFOPT_CHECK(k >= 1 && k <= n, "pass@k: need 1 <= k <= n, got k={} n={}", k, n);
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) prod *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - prod;
}

std::vector<int64_t> pass_at_k_grid(int64_t n) {
  std::vector<int64_t> ks;
  for (int64_t k = 1; k <= n; k *= 2) ks.push_back(k);
  if (!ks.empty() && ks.back() != n) ks.push_back(n);
  return ks;
}

std::map<int64_t, double> mean_pass_at_k(const std::map<std::string, ProblemCounts>& problems,
                                         const std::vector<int64_t>& ks) {
  std::map<int64_t, double> out;
  PREFOPT_CHECK(!problems.empty(), "pass@k: no problems");
  for (int64_t k : ks) {
    double s = 0;
    for (auto& [id, pc] : problems) {
      if (pc.n < k)
        fail("pass@k", fmt::format("problem \"{}\" has {} samples, fewer than k={}", id, pc.n, k),
             "sample at least k completions per problem");
      s += pass_at_k(pc.n, pc.c, k);
    }
    out[k] = s / problems.size();
  }
  return out;
}

}  // namespace prefopt
