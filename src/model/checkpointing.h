// prefopt model: gradient (activation) checkpointing. libtorch's C++ API has
// no torch.utils.checkpoint; this is the same idea as a custom autograd
// Function: the forward runs `fn` without recording a graph and keeps only its
// input; backward runs `fn` again with grad on from that input and
// back-propagates the incoming gradient through the recomputed graph, to the
// input and to `params` (the tensors `fn` reads that may need gradients: the
// layer's weights, or only its LoRA adapters under use_peft).
// Randomness: when `uses_rng`, the default generator of the input's device is
// saved before the forward and restored for the recomputation (then put back),
// so dropout draws the same mask twice.
#pragma once
#include <functional>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt {

at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& fn, const at::Tensor& input,
                        const std::vector<at::Tensor>& params, bool uses_rng);

}  // namespace prefopt
