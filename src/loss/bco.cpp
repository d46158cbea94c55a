// BCO (Jung et al. 2024, arXiv 2404.04656): trl BCOTrainer.bco_loss and the
// running reward shift (trl.trainer.utils.RunningMoments), v0.11.4.
#include <ATen/ATen.h>

#include "core/error.h"
#include "loss/objectives.h"

namespace prefopt {

static at::Tensor empty_like_opts(const at::Tensor& ref) { return at::zeros({0}, ref.options()); }

void RunningMoments::update(double x) {
  // trl.trainer.utils.RunningMoments.update with a single value (var 0, count 1),
  // in float32 for the batch statistics as TRL computes them.
  const double xs_count = 1.0;
  const float xs_mean = static_cast<float>(x), xs_var = 0.0f;
  const double delta = static_cast<double>(static_cast<float>(xs_mean - static_cast<float>(mean)));
  const double tot = count + xs_count;
  const double new_sum = xs_var * xs_count;
  const double old_sum = var * count + delta * delta * count * xs_count / tot;
  mean += static_cast<double>(static_cast<float>(delta * xs_count / tot));
  var = static_cast<double>(static_cast<float>((old_sum + new_sum) / tot));
  count = tot;
}

LossOut bco_loss(const UnpairedInputs& in, const BcoParams& p, RunningMoments& running,
                 const at::Tensor& rejected_weight) {
  const double beta = p.beta;
  const at::Tensor& any = in.policy_chosen.defined() ? in.policy_chosen : in.policy_rejected;
  at::Tensor cr = empty_like_opts(any), rr = empty_like_opts(any);
  if (in.policy_chosen.defined() && in.policy_chosen.numel() > 0) cr = beta * (in.policy_chosen - in.ref_chosen);
  if (in.policy_rejected.defined() && in.policy_rejected.numel() > 0) rr = beta * (in.policy_rejected - in.ref_rejected);
  if (!p.delta) running.update(at::cat({cr, rr}).mean().detach().item<double>());
  const double delta = p.delta ? *p.delta : running.mean;
  auto cl = -at::log_sigmoid(cr - delta);
  auto rl = -at::log_sigmoid(-(rr - delta));
  if (rejected_weight.defined()) rl = rl * rejected_weight.to(rl.device(), rl.scalar_type());
  LossOut out;
  out.losses = at::cat({cl, rl});
  out.chosen_rewards = cr.detach();
  out.rejected_rewards = rr.detach();
  out.extra["delta"] = at::scalar_tensor(delta);
  return out;
}

}  // namespace prefopt
