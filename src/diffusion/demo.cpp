#include "diffusion/demo.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "core/stats.h"
#include "diffusion/checker.h"
#include "diffusion/diffusers_io.h"
#include "diffusion/png.h"
#include "diffusion/t2i.h"

namespace prefopt::diffusion {

using json = nlohmann::json;

std::string find_t2i_base(const std::string& given) {
  if (!given.empty()) return given;
  if (is_directory("assets/t2i_base")) return "assets/t2i_base";
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    std::string exe(buf, static_cast<size_t>(n));
    const std::string dir = exe.substr(0, exe.find_last_of('/'));
    for (const char* rel : {"/../assets/t2i_base", "/../../assets/t2i_base"})
      if (is_directory(dir + rel)) return dir + rel;
  }
  fail("t2i-demo", "no base model found (assets/t2i_base)",
       "pass --base DIR, or make one with prefopt t2i-pretrain --output-dir DIR");
}

namespace {

json arm_json(const T2IArmSummary& a) {
  return json{{"name", a.name},
              {"accuracy", a.accuracy},
              {"stderr", a.stderr_},
              {"n", a.n},
              {"valid_two_objects", a.valid_two_objects},
              {"per_perturbation", a.per_perturbation},
              {"per_relation", a.per_relation},
              {"perturbations_used", a.perturbations_used},
              {"beta", a.beta},
              {"train_seconds", a.seconds},
              {"gain_over_sft_more", std::isnan(a.gain_over_sft_more) ? json(nullptr) : json(a.gain_over_sft_more)},
              {"gain_stderr", std::isnan(a.gain_stderr) ? json(nullptr) : json(a.gain_stderr)}};
}

T2IArmSummary summarise(const std::string& name, const EvalResult& r) {
  T2IArmSummary a;
  a.name = name;
  a.n = r.n;
  a.accuracy = r.accuracy;
  a.stderr_ = std::sqrt(std::max(0.0, r.accuracy * (1 - r.accuracy)) / std::max(1, r.n));
  a.valid_two_objects = r.valid_two_objects;
  a.per_perturbation = r.per_perturbation;
  a.per_relation = r.per_relation;
  a.matched = r.matched;
  return a;
}

void write_grid(const std::string& path, const at::Tensor& images) {
  int w = 0, h = 0;
  const int cols = 8, rows = static_cast<int>(std::min<int64_t>(8, (images.size(0) + cols - 1) / cols));
  const auto rgb = image_grid(images, rows, cols, 4, &w, &h);
  write_png(path, rgb, w, h);
}

std::string report_md(const T2IDemoOptions& o, const T2IDemoSummary& s, const json& setup,
                      const std::vector<Caption>& caps) {
  std::string md = "# t2i demo: TDPO / TKTO on the checkable world\n\n";
  md += fmt::format("Base `{}`, seed {}, {} fixed (caption, noise) pairs, DDIM {} steps, guidance {}.\n\n",
                    setup["base"].get<std::string>(), o.seed, s.arms.empty() ? 0 : s.arms[0].n,
                    setup["sample_steps"].get<int>(), setup["guidance"].get<double>());
  md += fmt::format("Checker on ground-truth renders of the same captions: {:.1f}%.\n\n",
                    100 * s.checker_ground_truth_accuracy);
  md += fmt::format("Each arm: {} steps of {} images (sft_more: {} images a step, the same forward/backward work), "
                    "learning rate {}.\n\n",
                    setup["steps"].get<int>(), setup["batch"].get<int>(), 2 * setup["batch"].get<int>(),
                    setup["lr"].get<double>());
  md += "| arm | β | accuracy | ± s.e. | vs sft_more (paired s.e.) | two valid objects | swap_colours | "
        "change_colour | change_shape | flip_relation | train s |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& a : s.arms) {
    auto pp = [&](const char* k) {
      auto it = a.per_perturbation.find(k);
      return it == a.per_perturbation.end() ? std::string("-") : fmt::format("{:.1f}%", 100 * it->second);
    };
    const std::string gain = std::isnan(a.gain_over_sft_more)
                                 ? std::string("-")
                                 : fmt::format("{:+.1f} ({:.1f})", 100 * a.gain_over_sft_more, 100 * a.gain_stderr);
    md += fmt::format("| {} | {} | {:.1f}% | {:.1f} | {} | {:.1f}% | {} | {} | {} | {} | {:.0f} |\n", a.name,
                      a.beta > 0 ? fmt::format("{:g}", a.beta) : "-", 100 * a.accuracy, 100 * a.stderr_, gain,
                      100 * a.valid_two_objects, pp("swap_colours"), pp("change_colour"), pp("change_shape"),
                      pp("flip_relation"), a.seconds);
  }
  md += "\nThe perturbation columns give the share of samples that the checker accepts for a caption of that "
        "perturbation type instead of the true one (that kind of mistake; lower is better).\n\n";
  md += "## Samples\n\nThe first 64 fixed pairs; captions in order (row-major):\n\n";
  md += "![ground truth](grid_ground_truth.png) ground-truth renders\n\n";
  for (const auto& a : s.arms) md += fmt::format("![{0}](grid_{0}.png) {0}\n\n", a.name);
  md += "<details><summary>captions</summary>\n\n";
  for (size_t i = 0; i < caps.size() && i < 64; ++i) md += fmt::format("{}. {}\n", i + 1, caption_text(caps[i]));
  md += "\n</details>\n";
  return md;
}

}  // namespace

T2IDemoSummary run_t2i_demo(const T2IDemoOptions& o) {
  at::set_num_threads(std::max(1, o.threads));
  const bool q = o.quick;
  const int steps = o.steps >= 0 ? o.steps : q ? 3 : 150;
  const int batch = o.batch > 0 ? o.batch : q ? 8 : 32;
  const double lr = o.lr > 0 ? o.lr : 1e-4;
  const double beta = o.beta > 0 ? o.beta : 2000;
  const int eval_n = o.eval_n > 0 ? o.eval_n : q ? 32 : 512;
  const int sample_steps = o.sample_steps > 0 ? o.sample_steps : q ? 8 : 20;
  const double guidance = o.guidance > 0 ? o.guidance : 3.0;
  std::vector<double> sweep = o.beta_sweep;
  if (sweep.empty() && !q) sweep = {500, 8000};
  const std::string base_dir = find_t2i_base(o.base);
  PREFOPT_REQUIRE(!o.output_dir.empty(), "t2i-demo", "empty --output-dir", "name a directory");
  make_dirs(o.output_dir);
  const double t0 = now_seconds();
  const Pipeline base = load_pipeline(base_dir);
  const Schedule sched(base.scheduler);
  const EvalSet set = make_eval_set(eval_n, o.eval_seed);
  info("t2i-demo: base {} ({} parameters), {} eval pairs, {} steps x {} images per arm", base_dir,
       base.unet.num_parameters(), eval_n, steps, batch);

  T2IDemoSummary s;
  // The checker on ground-truth renders of the eval captions.
  {
    Rng rng(o.eval_seed + 1);
    std::vector<Image> gt;
    int ok = 0;
    for (const auto& c : set.captions) {
      gt.push_back(render(c, rng));
      ok += check(gt.back(), c).match;
    }
    s.checker_ground_truth_accuracy = static_cast<double>(ok) / set.captions.size();
    write_grid(o.output_dir + "/grid_ground_truth.png", images_to_tensor(gt));
  }
  auto finish_arm = [&](T2IArmSummary a, const EvalResult& r) {
    write_grid(o.output_dir + "/grid_" + a.name + ".png", r.images);
    info("t2i-demo: {:<14} accuracy {:.3f} ± {:.3f}  valid {:.3f}  ({:.0f} s train)", a.name, a.accuracy, a.stderr_,
         a.valid_two_objects, a.seconds);
    s.arms.push_back(a);
  };
  const double sft_weight = o.sft_weight >= 0 ? o.sft_weight : 0.0;
  auto wanted = [&](const std::string& name) {
    return o.arms.empty() || std::find(o.arms.begin(), o.arms.end(), name) != o.arms.end();
  };
  struct ArmSpec {
    std::string name, kind;
    double beta;
  };
  std::vector<ArmSpec> specs = {{"sft_more", "sft_more", 0}, {"tdpo", "tdpo", beta}, {"tkto", "tkto", beta},
                                {"diffusion_dpo", "diffusion_dpo", beta}};
  for (double b : sweep) specs.push_back({fmt::format("tdpo_beta{:g}", b), "tdpo", b});
  for (const auto& name : o.arms) {
    bool known = name == "base";
    for (const auto& sp : specs) known |= sp.name == name;
    PREFOPT_REQUIRE(known, "--arms", "no arm named '" + name + "'",
                    "use base, sft_more, tdpo, tkto, diffusion_dpo or tdpo_betaB for a β in --beta-sweep");
  }
  if (wanted("base")) {
    const EvalResult r = evaluate(base.unet, sched, set, sample_steps, guidance);
    finish_arm(summarise("base", r), r);
  }
  for (const auto& sp : specs) {
    if (!wanted(sp.name)) continue;
    ArmOptions ao;
    ao.name = sp.kind;
    ao.seed = o.seed;
    ao.steps = steps;
    ao.batch = batch;
    ao.lr = lr;
    ao.beta = sp.beta > 0 ? sp.beta : beta;
    ao.sft_weight = sft_weight;
    ao.t_min = o.t_min;
    ArmLog log;
    const TinyUNet policy = train_arm(base.unet, sched, ao, &log);
    const EvalResult r = evaluate(policy, sched, set, sample_steps, guidance);
    T2IArmSummary a = summarise(sp.name, r);
    a.beta = sp.beta;
    a.seconds = log.seconds;
    if (sp.kind != "sft_more") a.perturbations_used = log.perturbations_used;
    write_jsonl(o.output_dir + "/metrics_" + sp.name + ".jsonl", log.rows);
    finish_arm(a, r);
  }
  // Paired gains over the control: every arm was scored on the same (caption, noise) pairs.
  const auto control = std::find_if(s.arms.begin(), s.arms.end(), [](const T2IArmSummary& a) { return a.name == "sft_more"; });
  if (control != s.arms.end())
    for (auto& a : s.arms) {
      if (a.name == "sft_more" || a.matched.size() != control->matched.size()) continue;
      std::vector<double> d;
      for (size_t i = 0; i < a.matched.size(); ++i) d.push_back(double(a.matched[i]) - double(control->matched[i]));
      std::tie(a.gain_over_sft_more, a.gain_stderr) = mean_and_stderr(d);
    }
  json setup = {{"base", base_dir},   {"seed", o.seed},       {"steps", steps},       {"batch", batch},
                {"lr", lr},           {"beta", beta},         {"beta_sweep", sweep},  {"eval_n", eval_n},
                {"eval_seed", o.eval_seed}, {"sample_steps", sample_steps}, {"guidance", guidance}, {"sft_weight", sft_weight}, {"t_min", o.t_min},
                {"quick", q},         {"seconds", now_seconds() - t0}};
  json arms = json::array();
  for (const auto& a : s.arms) arms.push_back(arm_json(a));
  s.json = {{"arms", arms}, {"checker_ground_truth_accuracy", s.checker_ground_truth_accuracy}, {"setup", setup}};
  atomic_write(o.output_dir + "/summary.json", s.json.dump(2) + "\n");
  atomic_write(o.output_dir + "/report.md", report_md(o, s, setup, set.captions));
  return s;
}

std::string t2i_demo_printout(const T2IDemoSummary& s) {
  std::string out = fmt::format("checker on ground truth: {:.1f}%\n", 100 * s.checker_ground_truth_accuracy);
  for (const auto& a : s.arms)
    out += fmt::format("{:<16} accuracy {:5.1f}% ± {:.1f}  two valid objects {:5.1f}%  (n {}){}\n", a.name,
                       100 * a.accuracy, 100 * a.stderr_, 100 * a.valid_two_objects, a.n,
                       std::isnan(a.gain_over_sft_more)
                           ? std::string()
                           : fmt::format("  vs sft_more {:+.1f} ± {:.1f} (paired)", 100 * a.gain_over_sft_more,
                                         100 * a.gain_stderr));
  return out;
}

}  // namespace prefopt::diffusion
