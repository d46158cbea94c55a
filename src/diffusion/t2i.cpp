#include "diffusion/t2i.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "diffusion/checker.h"
#include "diffusion/diffusers_io.h"
#include "diffusion/losses.h"
#include "train/adamw.h"

namespace prefopt::diffusion {

using json = nlohmann::json;

at::Tensor images_to_tensor(const std::vector<Image>& imgs) {
  const int64_t b = static_cast<int64_t>(imgs.size());
  auto t = at::empty({b, kImage, kImage, 3});
  float* d = t.data_ptr<float>();
  for (int64_t i = 0; i < b; ++i) std::copy(imgs[i].begin(), imgs[i].end(), d + i * kImage * kImage * 3);
  return (t.permute({0, 3, 1, 2}).contiguous() * 2 - 1);
}

Image tensor_to_image(const at::Tensor& x, int64_t i) {
  auto hwc = ((x[i].detach().to(at::kFloat).clamp(-1, 1) + 1) / 2).permute({1, 2, 0}).contiguous();
  const float* d = hwc.data_ptr<float>();
  return Image(d, d + hwc.numel());
}

at::Tensor tokens_tensor(const std::vector<Caption>& caps, const std::vector<bool>& drop) {
  const int64_t b = static_cast<int64_t>(caps.size());
  auto t = at::zeros({b, kTokens}, at::kLong);
  int64_t* d = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    if (!drop.empty() && drop[i]) continue;
    const auto ids = tokenize_caption(caption_text(caps[i]));
    std::copy(ids.begin(), ids.end(), d + i * kTokens);
  }
  return t;
}

namespace {

void append_line(const std::string& path, const json& row) {
  if (path.empty()) return;
  std::FILE* f = std::fopen(path.c_str(), "a");
  PREFOPT_CHECK(f, "{}: cannot append metrics", path);
  const std::string line = row.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), f);
  std::fclose(f);
}

// Global gradient norm -> the factor that clips it to `clip`.
double clip_scale(const TinyUNet& m, double clip, double* norm_out) {
  double sq = 0;
  for (const auto& [n, t] : m.params())
    if (t.grad().defined()) sq += t.grad().pow(2).sum().item<double>();
  const double norm = std::sqrt(sq);
  if (norm_out) *norm_out = norm;
  return clip > 0 && norm > clip ? clip / norm : 1.0;
}

double cosine_lr(double lr, int step, int steps, int warmup, double min_ratio) {
  if (step <= warmup) return lr * step / std::max(1, warmup);
  const double p = static_cast<double>(step - warmup) / std::max(1, steps - warmup);
  return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, p))));
}

// A training batch of rendered scenes.
struct SceneBatch {
  std::vector<Caption> captions;
  at::Tensor x0;
};
SceneBatch scene_batch(Rng& rng, int b) {
  SceneBatch s;
  std::vector<Image> imgs;
  for (int i = 0; i < b; ++i) {
    s.captions.push_back(random_caption(rng));
    imgs.push_back(render(s.captions.back(), rng));
  }
  s.x0 = images_to_tensor(imgs);
  return s;
}

// The plain DDPM loss on a batch with caption dropout.
at::Tensor ddpm_loss(const TinyUNet& m, const Schedule& sched, const SceneBatch& s, Rng& rng, at::Generator& gen,
                     double dropout) {
  const int64_t b = s.x0.size(0);
  std::vector<bool> drop(static_cast<size_t>(b));
  for (auto&& d : drop) d = rng.uniform() < dropout;
  auto noise = at::randn(s.x0.sizes(), gen);
  auto t = at::randint(0, sched.T(), {b}, gen, at::kLong);
  auto xt = sched.add_noise(s.x0, noise, t);
  return per_example_mse(m.forward(xt, t, tokens_tensor(s.captions, drop)), noise).mean();
}

}  // namespace

void pretrain(const PretrainOptions& o, const std::string& metrics_path) {
  at::set_num_threads(std::max(1, o.threads));
  at::manual_seed(o.seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed * 2 + 1);
  Rng rng(o.seed);
  TinyUNet model(o.unet, o.seed);
  TinyUNet ema = model.clone();
  const Schedule sched(o.scheduler);
  model.set_requires_grad(true);
  AdamW opt(model.named_parameters(), AdamWOptions{0.9, 0.999, 1e-8, 0.0});
  if (!metrics_path.empty()) std::remove(metrics_path.c_str());
  info("t2i-pretrain: {} parameters, {} steps of batch {}, lr {}", model.num_parameters(), o.steps, o.batch, o.lr);
  const EvalSet probe = make_eval_set(o.eval_n, o.seed + 77);
  const double t0 = now_seconds();
  auto save = [&](int step) {
    json extra = {{"made_by", "prefopt t2i-pretrain"},
                  {"seed", o.seed},
                  {"steps", o.steps},
                  {"step", step},
                  {"batch", o.batch},
                  {"lr", o.lr},
                  {"base_channels", o.unet.base_channels},
                  {"ema_decay", o.ema_decay},
                  {"caption_dropout", o.caption_dropout},
                  {"weights", "EMA"},
                  {"seconds", now_seconds() - t0}};
    save_pipeline(o.output_dir, ema, o.scheduler, extra);
  };
  Progress prog("t2i-pretrain", o.steps);
  double win = 0;
  int win_n = 0;
  const int last = o.stop_after > 0 ? std::min(o.steps, o.stop_after) : o.steps;
  for (int step = 1; step <= last; ++step) {
    const auto batch = scene_batch(rng, o.batch);
    auto loss = ddpm_loss(model, sched, batch, rng, gen, o.caption_dropout);
    loss.backward();
    double gnorm = 0;
    const double scale = clip_scale(model, o.clip, &gnorm);
    const double lr = cosine_lr(o.lr, step, o.steps, o.warmup, o.min_lr_ratio);
    opt.step(lr, step, scale);
    {
      at::NoGradGuard g;
      const double d = std::min(o.ema_decay, (1.0 + step) / (10.0 + step));
      for (auto& [n, e] : ema.params()) e.mul_(d).add_(model.params().at(n).detach(), 1 - d);
    }
    win += loss.item<double>(), ++win_n;
    if (step % 50 == 0 || step == last) {
      json row = {{"step", step}, {"loss", win / win_n}, {"lr", lr}, {"grad_norm", gnorm},
                  {"seconds", now_seconds() - t0}};
      if (o.eval_every > 0 && (step % o.eval_every == 0 || step == last)) {
        const auto r = evaluate(ema, sched, probe, o.sample_steps, o.guidance);
        row["probe_accuracy"] = r.accuracy;
        row["probe_valid_two_objects"] = r.valid_two_objects;
        info("t2i-pretrain: step {} probe accuracy {:.3f} (valid {:.3f}, n {})", step, r.accuracy,
             r.valid_two_objects, r.n);
        if (step < last) save(step);  // a usable model at every probe
      }
      append_line(metrics_path, row);
      prog.update(step, fmt::format("loss {:.4f}", win / win_n));
      win = 0, win_n = 0;
    }
  }
  prog.finish();
  save(last);
  info("t2i-pretrain: wrote {}", o.output_dir);
}

EvalSet make_eval_set(int n, uint64_t seed) {
  EvalSet s;
  Rng rng(seed);
  for (int i = 0; i < n; ++i) s.captions.push_back(random_caption(rng));
  // Box-Muller over the portable generator: the same noise on every machine.
  s.noise = at::empty({n, 3, kImage, kImage});
  float* d = s.noise.data_ptr<float>();
  const int64_t m = s.noise.numel();
  for (int64_t i = 0; i < m; i += 2) {
    const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    d[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
    if (i + 1 < m) d[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
  }
  return s;
}

EvalResult evaluate(const TinyUNet& model, const Schedule& sched, const EvalSet& set, int steps, double guidance,
                    int batch) {
  EvalResult r;
  const int64_t n = static_cast<int64_t>(set.captions.size());
  r.n = static_cast<int>(n);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t e = std::min(n, s + batch);
    std::vector<Caption> caps(set.captions.begin() + s, set.captions.begin() + e);
    parts.push_back(ddim_sample(model, sched, tokens_tensor(caps), set.noise.slice(0, s, e), steps, guidance));
  }
  r.images = at::cat(parts);
  int64_t ok = 0, valid = 0;
  std::map<std::string, int64_t> mistakes;
  std::vector<int64_t> rel_n(kRelations, 0), rel_ok(kRelations, 0);
  for (int p = 0; p < kPerturbations; ++p) mistakes[perturbation_name(p)] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Image img = tensor_to_image(r.images, i);
    const Caption& c = set.captions[i];
    const auto res = check(img, c);
    ok += res.match, valid += res.two_objects;
    r.matched.push_back(res.match ? 1 : 0);
    rel_n[c.rel] += 1, rel_ok[c.rel] += res.match;
    if (!res.two_objects || res.match) continue;
    // Which kind of mistake: does the image satisfy a perturbed caption of that type?
    Rng dummy(0);
    Caption sw = perturb(c, kSwapColours, dummy), fl = perturb(c, kFlipRelation, dummy);
    if (check(img, sw).match) ++mistakes["swap_colours"];
    if (check(img, fl).match) ++mistakes["flip_relation"];
    bool colour = false, shape = false;
    for (const auto& o : all_captions()) {
      if (o.rel != c.rel || !check(img, o).match) continue;
      const bool one_colour = (o.c1 != c.c1) != (o.c2 != c.c2) && o.s1 == c.s1 && o.s2 == c.s2;
      const bool one_shape = (o.s1 != c.s1) != (o.s2 != c.s2) && o.c1 == c.c1 && o.c2 == c.c2;
      const bool fresh = o.c1 != c.c2 && o.c2 != c.c1;  // a colour neither object had
      colour |= one_colour && fresh;
      shape |= one_shape;
    }
    mistakes["change_colour"] += colour;
    mistakes["change_shape"] += shape;
  }
  r.accuracy = static_cast<double>(ok) / std::max<int64_t>(1, n);
  r.valid_two_objects = static_cast<double>(valid) / std::max<int64_t>(1, n);
  for (int q = 0; q < kRelations; ++q)
    if (rel_n[q] > 0) r.per_relation[relation_text(q)] = static_cast<double>(rel_ok[q]) / static_cast<double>(rel_n[q]);
  for (auto& [k, v] : mistakes) r.per_perturbation[k] = static_cast<double>(v) / std::max<int64_t>(1, n);
  return r;
}

PairInputs caption_pair_inputs(const Schedule& sched, const at::Tensor& x0, const std::vector<Caption>& pos,
                               const std::vector<Caption>& neg, const at::Tensor& noise, const at::Tensor& t) {
  const auto xt = sched.add_noise(x0, noise, t);
  return PairInputs{at::cat({xt, xt}), at::cat({t, t}), at::cat({tokens_tensor(pos), tokens_tensor(neg)})};
}

PairInputs image_pair_inputs(const Schedule& sched, const at::Tensor& x0_w, const at::Tensor& x0_l,
                             const std::vector<Caption>& caps, const at::Tensor& noise, const at::Tensor& t) {
  const auto tok = tokens_tensor(caps);
  return PairInputs{at::cat({sched.add_noise(x0_w, noise, t), sched.add_noise(x0_l, noise, t)}), at::cat({t, t}),
                    at::cat({tok, tok})};
}

TinyUNet train_arm(const TinyUNet& base, const Schedule& sched, const ArmOptions& o, ArmLog* log) {
  const double t0 = now_seconds();
  PREFOPT_REQUIRE(o.name == "sft_more" || o.name == "tdpo" || o.name == "tkto" || o.name == "diffusion_dpo",
                  "arm '" + o.name + "'", "unknown", "use sft_more, tdpo, tkto or diffusion_dpo");
  PREFOPT_REQUIRE(o.t_min >= 0 && o.t_min < sched.T(), "t_min", fmt::format("{} is outside 0..{}", o.t_min, sched.T() - 1),
                  "pick a timestep below num_train_timesteps");
  TinyUNet policy = base.clone();
  policy.set_requires_grad(true);
  const TinyUNet& ref = base;
  AdamW opt(policy.named_parameters(), AdamWOptions{0.9, 0.999, 1e-8, 0.0});
  // Scenes, perturbations, timesteps and noise come from the seed.
  Rng rng(o.seed * 1000003 + 17);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed * 7919 + 3);
  for (int p = 0; p < kPerturbations; ++p) log->perturbations_used[perturbation_name(p)] = 0;
  const int B = o.batch;
  for (int step = 1; step <= o.steps; ++step) {
    json row = {{"step", step}};
    at::Tensor loss;
    if (o.name == "sft_more") {
      const auto s = scene_batch(rng, 2 * B);
      loss = ddpm_loss(policy, sched, s, rng, gen, o.caption_dropout);
    } else {
      const auto s = scene_batch(rng, B);
      std::vector<Caption> neg;
      for (const auto& c : s.captions) {
        int type = 0;
        neg.push_back(random_perturbation(c, rng, &type));
        ++log->perturbations_used[perturbation_name(type)];
      }
      auto noise = at::randn(s.x0.sizes(), gen);
      auto t = at::randint(o.t_min, sched.T(), {B}, gen, at::kLong);
      PairInputs in;
      if (o.name == "diffusion_dpo") {
        // Winner: the render of the caption; loser: a render of the perturbed caption.
        std::vector<Image> lose;
        for (const auto& c : neg) lose.push_back(render(c, rng));
        in = image_pair_inputs(sched, s.x0, images_to_tensor(lose), s.captions, noise, t);
      } else {
        in = caption_pair_inputs(sched, s.x0, s.captions, neg, noise, t);
      }
      const auto &xt2 = in.x_t, &tok2 = in.tokens;
      const auto& t2 = in.t;
      auto eps = policy.forward(xt2, t2, tok2).chunk(2, 0);
      at::Tensor ref_eps;
      {
        at::NoGradGuard g;
        ref_eps = ref.forward(xt2, t2, tok2);
      }
      auto re = ref_eps.chunk(2, 0);
      PrefLoss pl = o.name == "tkto" ? tkto_loss(eps[0], eps[1], re[0], re[1], noise, o.beta, o.desirable_weight,
                                                 o.undesirable_weight)
                                     : tdpo_loss(eps[0], eps[1], re[0], re[1], noise, o.beta);
      loss = pl.loss;
      if (o.sft_weight > 0) loss = loss + o.sft_weight * per_example_mse(eps[0], noise).mean();
      row["reward_accuracy"] = pl.accuracy;
      row["margin"] = pl.margin;
      {
        at::NoGradGuard g;
        row["mse_pos"] = per_example_mse(eps[0], noise).mean().item<double>();
        row["mse_neg"] = per_example_mse(eps[1], noise).mean().item<double>();
      }
    }
    loss.backward();
    double gnorm = 0;
    const double scale = clip_scale(policy, o.clip, &gnorm);
    opt.step(o.lr, step, scale);
    row["loss"] = loss.item<double>();
    row["grad_norm"] = gnorm;
    if (step % 10 == 0 || step == o.steps) log->rows.push_back(row);
  }
  policy.set_requires_grad(false);
  log->seconds = now_seconds() - t0;
  return policy;
}

std::vector<uint8_t> image_grid(const at::Tensor& images, int rows, int cols, int zoom, int* width, int* height) {
  const int cell = kImage * zoom + 1;
  const int w = cols * cell + 1, h = rows * cell + 1;
  std::vector<uint8_t> out(static_cast<size_t>(w) * h * 3, 64);  // grey gaps
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      if (i >= images.size(0)) continue;
      const Image img = tensor_to_image(images, i);
      for (int y = 0; y < kImage * zoom; ++y)
        for (int x = 0; x < kImage * zoom; ++x)
          for (int k = 0; k < 3; ++k) {
            const float v = img[((y / zoom) * kImage + x / zoom) * 3 + k];
            out[(static_cast<size_t>(r * cell + 1 + y) * w + (c * cell + 1 + x)) * 3 + k] =
                static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255));
          }
    }
  *width = w, *height = h;
  return out;
}

}  // namespace prefopt::diffusion
