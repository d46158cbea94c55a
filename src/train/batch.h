// prefopt train: micro-batches as model inputs plus the list of scored tokens.
//
// Prefix sharing (the default): one row per example, [prompt | c0 | c1 | ...],
// with a 4-D block mask (the prompt is causal; each completion sees the prompt
// and its own earlier tokens, never another completion) and position ids that
// restart at len(prompt) for every completion. The prompt is computed once for
// chosen, rejected (and gold, and KTO's KL completion).
// Naive (prefix_sharing = false, TRL's concatenated forward): one right-padded
// row per (example, completion), [prompt | ck], with a 2-D padding mask.
//
// Both give the same scored tokens: completion token j of completion k is
// predicted from the previous position of its own sequence (the last prompt
// token for j = 0; when the prompt is empty the first token is not scored, as
// with shifted labels) and counts when its loss-mask entry is 1. Segment id
// = b*K + k.
#pragma once
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "data/dataset.h"

namespace prefopt {

struct BatchItem {
  const std::vector<int32_t>* prompt;
  std::vector<const Completion*> completions;  // the same count K for every item
};

struct PackedBatch {
  at::Tensor ids, position_ids, attn_mask;  // [R,L] int64, [R,L] int64, [R,1,L,L] bool or [R,L] int64
  at::Tensor src, labels, seg;               // [N] int64: flat row index into [R*L], label, segment
  int64_t rows = 0, length = 0, examples = 0, per_example = 0;
  int64_t tokens = 0;                         // real (non-pad) tokens in the rows
};

PackedBatch pack_batch(const std::vector<BatchItem>& items, bool prefix_sharing);

}  // namespace prefopt
