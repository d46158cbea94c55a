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
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt {

// Rank 0's values of the trained tensors on every rank (at the start: the
// same weights whatever each rank loaded or initialised).
void broadcast_params(std::vector<std::pair<std::string, at::Tensor>>& params);

// Sums the gradients of the trained tensors over the ranks, in place, as
// PyTorch's DDP does: the tensors are packed, in reverse order (the order in
// which backward finishes them), into flat buckets of one dtype and device of
// at most `bucket_cap_mb` MiB, one all-reduce per bucket. A tensor that has a
// gradient on some rank gets one everywhere (zeros where a rank had none); one
// with no gradient anywhere keeps none.
//
// Overlap: arm() before the last backward pass of an optimizer step. During
// that pass a hook after each tensor's gradient accumulation (a post-hook of
// its AccumulateGrad node, so the gradient is the final, accumulated one)
// copies it into its bucket; a bucket whose tensors are all final starts its
// all-reduce at once, buckets always in index order on every rank. finish()
// (after backward, before the gradient norm) starts the rest and waits for
// all. A bucket with a tensor that gets no gradient in that pass (unused, or
// used only by earlier micro-batches) holds back itself and every later
// bucket until finish(). Without overlap (or without arm()), finish() starts
// every bucket itself. Either way every bucket holds the same values and is reduced the
// same way: the sums are the same bits.
//
// A tensor whose gradient is accumulated twice in one pass (a graph this
// reducer does not expect) makes every rank redo the step's reduction from
// the final gradients and turn overlap off, with a warning.
class GradReducer {
 public:
  GradReducer(std::vector<std::pair<std::string, at::Tensor>>& params, double bucket_cap_mb, bool overlap);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  void arm();     // the next backward pass is the step's last: reduce as gradients become final
  void finish();  // every gradient summed over the ranks

  size_t buckets() const;
  bool overlap() const;
  double exposed_seconds() const;  // total time spent in finish()
  int64_t steps() const;           // finish() calls
  int64_t started_in_backward() const;  // bucket all-reduces started by the hooks, over all steps

  struct State;

 private:
  std::shared_ptr<State> s_;
};

// Sums of named values over the ranks; a key missing on a rank counts 0, and
// the result has every key some rank had.
std::map<std::string, double> sum_over_ranks(const std::map<std::string, double>& mine);

}  // namespace prefopt
