// prefopt train: what data parallelism adds to a training step (see
// dist/dist.h for the process group). Every rank holds the whole model; an
// optimizer step's global batch is gradient_accumulation_steps x world_size
// micro-batches, consecutive in the data order of the epoch, rank r taking
// its own gradient_accumulation_steps of them; each rank scales its losses by
// 1 / (accumulation x world size), so the summed gradients equal those of one
// rank accumulating the whole global batch. With one rank every function
// here returns its input.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt {

// Rank 0's values of the trained tensors on every rank (at the start: the
// same weights whatever each rank loaded or initialised).
void broadcast_params(std::vector<std::pair<std::string, at::Tensor>>& params);

// Sums the gradients over the ranks, in place (bucketed all-reduce). A
// tensor that has a gradient on some rank gets one everywhere (zeros where a
// rank had none); one with no gradient anywhere keeps none.
void sum_grads_over_ranks(std::vector<std::pair<std::string, at::Tensor>>& params);

// Sums of named values over the ranks; a key missing on a rank counts 0, and
// the result has every key some rank had.
std::map<std::string, double> sum_over_ranks(const std::map<std::string, double>& mine);

}  // namespace prefopt
