// prefopt diffusion: preference losses for ε-prediction diffusion models, as
// small pure functions of per-example denoising errors
//   ℓ = mean over pixels of (ε_pred − ε)²        (one number per example).
//
// Diffusion-DPO (Wallace et al., arXiv 2311.12908; SalesforceAIResearch/DiffusionDPO
// train.py): winner w and loser l share t and ε;
//   L = −mean log σ(−β/2 · [(ℓθ_w − ℓref_w) − (ℓθ_l − ℓref_l)])
// Diffusion-KTO (Li et al., arXiv 2404.04465; jacklishufan/diffusion-kto):
//   g = ℓref − ℓθ,  z0 = max(0, mean_batch(g)) (detached),
//   L = mean( λ_y · (1 − σ(s_y · β · (g − z0))) ),  s_y = +1 desirable, −1 undesirable.
// TDPO / TKTO (arXiv 2509.25771): the same losses where the two branches are
// one image under its caption (preferred / desirable) and under a perturbed
// caption (dispreferred / undesirable), with one t, one ε and one x_t.
#pragma once
#include <ATen/core/Tensor.h>

namespace prefopt::diffusion {

// Mean over every dimension but the first: (B, ...) -> (B).
at::Tensor per_example_mse(const at::Tensor& pred, const at::Tensor& target);

struct PrefLoss {
  at::Tensor loss;      // scalar, differentiable
  double accuracy = 0;  // fraction of examples whose implicit reward has the right sign
  double margin = 0;    // mean of the sigmoid's argument (DPO) / mean g (KTO), for logs
};

// Diffusion-DPO on per-example errors (each (B)); β is per-pixel-mean scaled.
PrefLoss diffusion_dpo_loss(const at::Tensor& model_w, const at::Tensor& model_l, const at::Tensor& ref_w,
                            const at::Tensor& ref_l, double beta);

// Diffusion-KTO on per-example errors (N) with labels (N; 1 desirable, 0 undesirable).
PrefLoss diffusion_kto_loss(const at::Tensor& model, const at::Tensor& ref, const at::Tensor& labels, double beta,
                            double desirable_weight = 1.0, double undesirable_weight = 1.0);

// TDPO: ε-predictions of the policy and the reference for the matching caption
// (pos) and the perturbed one (neg), all for the same x_t, against the one ε.
PrefLoss tdpo_loss(const at::Tensor& eps_pos, const at::Tensor& eps_neg, const at::Tensor& ref_pos,
                   const at::Tensor& ref_neg, const at::Tensor& noise, double beta);

// TKTO: the same four predictions; matching = desirable, perturbed = undesirable,
// one KL reference point over the 2B examples.
PrefLoss tkto_loss(const at::Tensor& eps_pos, const at::Tensor& eps_neg, const at::Tensor& ref_pos,
                   const at::Tensor& ref_neg, const at::Tensor& noise, double beta, double desirable_weight = 1.0,
                   double undesirable_weight = 1.0);

}  // namespace prefopt::diffusion
