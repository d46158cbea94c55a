// SFT and the NLL terms (RPO's rpo_alpha, CPO's cpo_alpha, ORPO's nll): the
// causal-LM cross-entropy over completion tokens (transformers' CausalLM loss,
// trl dpo_trainer.py concatenated_forward nll_loss).
#include <ATen/ATen.h>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

at::Tensor nll_loss(const at::Tensor& logp_sum, const at::Tensor& token_count) {
  return (-logp_sum.sum() / token_count.sum().clamp_min(1));
}

at::Tensor sft_loss(const at::Tensor& logp_sum, const at::Tensor& token_count) {
  return -logp_sum / token_count.clamp_min(1);
}

}  // namespace prefopt
