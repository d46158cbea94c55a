// prefopt train: BCO's underlying-distribution matching (bco_udm). A prompt's
// embedding is the mean input embedding of its tokens under the initial
// policy; a logistic-regression classifier separates desirable from
// undesirable prompts, and each training row gets TRL's density-ratio weight
// clamp(p / (1 - p), min_density_ratio, max_density_ratio) (used on the
// undesirable rows of training batches). Checkpoints hold the classifier
// (udm.w) and the row weights (udm.row_weight), so a resume continues with
// exactly the weights of the interrupted run.
#pragma once
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "data/dataset.h"
#include "loss/objectives.h"

namespace prefopt {

class CausalLM;

struct BcoUdm {
  DensityRatioClassifier clf;
  at::Tensor emb;         // [N,E] double, CPU: prompt embeddings of the training rows
  at::Tensor row_weight;  // [N] float, CPU: density-ratio weight per training row

  // Fits on `train`; false (with a warning) when a class has no rows.
  bool fit(CausalLM& policy, const Dataset& train, double min_ratio, double max_ratio);
  // Adds udm.w and udm.row_weight to a checkpoint's tensors.
  void save(std::map<std::string, at::Tensor>& tensors) const;
  // Takes the classifier (and the row weights, or recomputes them from it)
  // from a checkpoint's tensors; false when they are absent or of a model of
  // another width, leaving this one unchanged.
  bool restore(const std::map<std::string, at::Tensor>& tensors, double min_ratio, double max_ratio);
};

}  // namespace prefopt
