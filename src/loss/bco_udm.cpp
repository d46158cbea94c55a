// BCO underlying-distribution matching (Jung et al. 2024 §3.3; trl
// BCOTrainer._get_udm_weight): density-ratio weights from a logistic classifier
// of prompt embeddings.
#include <ATen/ATen.h>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

// Class-balanced L2 logistic regression (sklearn's LogisticRegression(C=1,
// class_weight="balanced") objective), Newton's method on [x, 1].
void DensityRatioClassifier::fit(const at::Tensor& pos, const at::Tensor& neg, int iters) {
  at::NoGradGuard ng;
  PREFOPT_CHECK(pos.size(0) > 0 && neg.size(0) > 0, "BCO UDM: needs desirable and undesirable prompt embeddings");
  auto X = at::cat({pos, neg}).to(at::kDouble).cpu();
  const int64_t n = X.size(0), E = X.size(1);
  X = at::cat({X, at::ones({n, 1}, X.options())}, 1);
  auto y = at::cat({at::ones({pos.size(0)}, X.options()), at::zeros({neg.size(0)}, X.options())});
  // balanced weights: n / (2 * n_class)
  auto sw = at::cat({at::full({pos.size(0)}, n / (2.0 * pos.size(0)), X.options()),
                     at::full({neg.size(0)}, n / (2.0 * neg.size(0)), X.options())});
  auto reg = at::ones({E + 1}, X.options());
  reg[E] = 0;  // no penalty on the intercept
  w = at::zeros({E + 1}, X.options());
  for (int it = 0; it < iters; ++it) {
    auto p = at::sigmoid(at::matmul(X, w));
    auto grad = at::matmul(X.t(), sw * (p - y)) + reg * w;
    auto Hd = sw * p * (1 - p);
    auto Hm = at::matmul(X.t() * Hd.unsqueeze(0), X) + at::diag(reg) + 1e-9 * at::eye(E + 1, X.options());
    auto step = at::linalg_solve(Hm, grad);
    w = w - step;
    if (step.abs().max().item<double>() < 1e-10) break;
  }
}

at::Tensor DensityRatioClassifier::prob_desirable(const at::Tensor& emb) const {
  PREFOPT_CHECK(w.defined(), "BCO UDM classifier used before fit()");
  auto X = emb.to(at::kDouble).cpu();
  X = at::cat({X, at::ones({X.size(0), 1}, X.options())}, 1);
  return at::sigmoid(at::matmul(X, w)).to(at::kFloat).to(emb.device());
}

at::Tensor DensityRatioClassifier::udm_weight(const at::Tensor& emb, double min_ratio, double max_ratio) const {
  auto p = prob_desirable(emb);
  return (p / (1 - p + 1e-8)).clamp(min_ratio, max_ratio);
}

}  // namespace prefopt
