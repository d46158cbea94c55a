// prefopt verify: the unbiased pass@k estimator (Chen et al. 2021, "Evaluating
// Large Language Models Trained on Code", arXiv 2107.03374):
//   pass@k = 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i)
// in the stable product form. No torch.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace prefopt {

// n samples, c of them correct, k <= n. Throws prefopt::Error on k > n or c > n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

// k = 1, 2, 4, ..., and n itself.
std::vector<int64_t> pass_at_k_grid(int64_t n);

struct ProblemCounts {
  int64_t n = 0, c = 0;
};
// Mean over problems of pass@k for each k in `ks` (problems with n < k are an error).
std::map<int64_t, double> mean_pass_at_k(const std::map<std::string, ProblemCounts>& problems,
                                         const std::vector<int64_t>& ks);

}  // namespace prefopt
