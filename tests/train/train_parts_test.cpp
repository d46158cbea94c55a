// The trainer's parts on their own: AdamW against libtorch's
// torch::optim::AdamW, the method enum, checkpoint rotation / latest /
// config changes, the eval split and the data options.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/data.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_train_parts_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

double max_rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs() / b.abs().clamp_min(1e-3)).max().item<double>();
}

struct AdamWRun {
  std::vector<at::Tensor> ours, theirs;
};

// Four steps of prefopt's AdamW and of torch::optim::AdamW on the same
// tensors (a matrix, a vector, a 3-D tensor), the same gradients and a
// changing learning rate. torch gets HF's two groups: decay for dim >= 2,
// none for the rest (or one decayed group when decay_all).
AdamWRun run_both(double wd, double grad_scale, bool decay_all) {
  at::manual_seed(3);
  std::vector<at::Tensor> init = {at::randn({4, 3}, at::kFloat), at::randn({5}, at::kFloat),
                                  at::randn({2, 2, 2}, at::kFloat)};
  std::vector<std::vector<at::Tensor>> grads(4);
  for (auto& g : grads)
    for (auto& t : init) g.push_back(at::randn(t.sizes(), at::kFloat) * 0.3);
  const double lrs[] = {1e-2, 5e-3, 2e-2, 1e-3};
  AdamWOptions o;
  o.beta1 = 0.85, o.beta2 = 0.99, o.eps = 1e-7, o.weight_decay = wd;

  std::vector<std::pair<std::string, at::Tensor>> params;
  for (size_t i = 0; i < init.size(); ++i) params.push_back({"p" + std::to_string(i), init[i].clone()});
  AdamW ours(params, o);
  std::vector<at::Tensor> tp;
  for (auto& t : init) tp.push_back(t.clone().set_requires_grad(true));
  torch::optim::AdamWOptions to(lrs[0]);
  to.betas({o.beta1, o.beta2}).eps(o.eps);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (decay_all) {
    groups.emplace_back(tp, std::make_unique<torch::optim::AdamWOptions>(to.weight_decay(wd)));
  } else {
    std::vector<at::Tensor> dec, nodec;
    for (auto& t : tp) (t.dim() >= 2 ? dec : nodec).push_back(t);
    groups.emplace_back(dec, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(to).weight_decay(wd)));
    groups.emplace_back(nodec, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(to).weight_decay(0)));
  }
  torch::optim::AdamW theirs(groups, to);
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < init.size(); ++i) {
      params[i].second.mutable_grad() = grads[s][i].clone();
      tp[i].mutable_grad() = grads[s][i] * grad_scale;
    }
    ours.step(lrs[s], s + 1, grad_scale);
    for (auto& g : theirs.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lrs[s]);
    theirs.step();
    for (auto& [n, t] : params) EXPECT_EQ(t.grad().abs().sum().item<double>(), 0.0) << "gradients are zeroed";
  }
  AdamWRun r;
  for (size_t i = 0; i < init.size(); ++i) r.ours.push_back(params[i].second), r.theirs.push_back(tp[i].detach());
  return r;
}

}  // namespace

TEST(AdamW, MatchesTorchOptimAdamW) {
  for (double wd : {0.0, 0.1}) {
    for (double scale : {1.0, 0.25}) {
      auto r = run_both(wd, scale, false);
      for (size_t i = 0; i < r.ours.size(); ++i)
        EXPECT_LT(max_rel_diff(r.ours[i], r.theirs[i]), 1e-6) << "wd " << wd << " scale " << scale << " p" << i;
    }
  }
}

TEST(AdamW, DecaysOnlyMatricesAsHf) {
  // Negative control: torch decaying every tensor differs from ours on the
  // 1-D tensor only (and agrees on the others).
  auto r = run_both(0.5, 1.0, true);
  EXPECT_LT(max_rel_diff(r.ours[0], r.theirs[0]), 1e-6);
  EXPECT_LT(max_rel_diff(r.ours[2], r.theirs[2]), 1e-6);
  EXPECT_GT(max_rel_diff(r.ours[1], r.theirs[1]), 1e-4);
  EXPECT_TRUE(AdamW::decays(at::zeros({2, 2})));
  EXPECT_FALSE(AdamW::decays(at::zeros({2})));
}

TEST(AdamW, SkipsParametersWithoutGradient) {
  std::vector<std::pair<std::string, at::Tensor>> params = {{"a", at::ones({2, 2})}, {"b", at::ones({2})}};
  AdamW opt(params, AdamWOptions{});
  params[0].second.mutable_grad() = at::ones({2, 2});
  opt.step(0.1, 1);
  EXPECT_TRUE(at::equal(params[1].second, at::ones({2})));
  EXPECT_TRUE(at::equal(opt.exp_avg()[1], at::zeros({2})));
  // step 1: m/(1-b1) = g, sqrt(v/(1-b2)) = |g|: the update is lr * g / (|g| + eps)
  EXPECT_NEAR(params[0].second[0][0].item<double>(), 1 - 0.1 / (1 + 1e-8), 1e-7);
}

TEST(Method, ParsedByValidate) {
  TrainConfig c;
  for (auto [s, m] : std::vector<std::pair<std::string, Method>>{{"dpo", Method::Dpo},   {"kto", Method::Kto},
                                                                 {"bco", Method::Bco},   {"tpo", Method::Tpo},
                                                                 {"orpo", Method::Orpo}, {"cpo", Method::Cpo},
                                                                 {"simpo", Method::Simpo}, {"sft", Method::Sft}}) {
    c.method = s;
    c.validate();
    EXPECT_EQ(c.method_kind(), m) << s;
    EXPECT_EQ(std::string(to_string(m)), s);
  }
  EXPECT_EQ(data_kind(Method::Tpo), DataKind::Triple);
  EXPECT_EQ(data_kind(Method::Bco), DataKind::Unpaired);
  EXPECT_EQ(data_kind(Method::Simpo), DataKind::Paired);
  EXPECT_EQ(data_kind(Method::Sft), DataKind::Sft);
  for (const char* s : {"dpo", "kto", "bco", "tpo", "orpo", "cpo", "simpo", "sft"})
    EXPECT_EQ(data_kind(parse_method(s)), data_kind_for_method(s)) << s;
  // a method changed after validate() is parsed again
  c.method = "kto";
  EXPECT_EQ(c.method_kind(), Method::Kto);
  c.method = "ppo";
  try {
    c.validate();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"method\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ppo"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, LatestAndRotate) {
  const std::string d = tmpdir("rotate");
  for (int s : {2, 10, 4, 6}) {
    make_dirs(d + "/checkpoint-" + std::to_string(s));
    atomic_write(d + "/checkpoint-" + std::to_string(s) + "/trainer_state.json", "{}");
  }
  make_dirs(d + "/checkpoint-99x");   // not a whole number: not the latest
  atomic_write(d + "/checkpoint-99x/trainer_state.json", "{}");
  make_dirs(d + "/checkpoint-50");    // no trainer_state.json: not the latest
  make_dirs(d + "/checkpoint-7.tmp"); // an unfinished write: never rotated
  EXPECT_EQ(latest_checkpoint(d), d + "/checkpoint-10");
  EXPECT_EQ(latest_checkpoint(d + "/missing"), "");
  rotate_checkpoints(d, 0);  // keep all
  EXPECT_TRUE(fs::exists(d + "/checkpoint-2"));
  rotate_checkpoints(d, 3);
  std::set<std::string> left;
  for (auto& e : fs::directory_iterator(d)) left.insert(e.path().filename().string());
  // by step: 2, 4, 6, 10, 50, 99 -> keep 10, 50, 99
  EXPECT_EQ(left, (std::set<std::string>{"checkpoint-10", "checkpoint-50", "checkpoint-99x", "checkpoint-7.tmp"}));
}

TEST(Checkpoint, ConfigChangesListKeysThatMatter) {
  TrainConfig a;
  a.method = "bco";
  TrainConfig b = a;
  EXPECT_TRUE(config_changes(a.to_json(), b.to_json()).empty());
  b.output_dir = "elsewhere", b.logging_steps = 3, b.save_steps = 7, b.threads = 2, b.eval_steps = 5;
  EXPECT_TRUE(config_changes(a.to_json(), b.to_json()).empty());
  b.learning_rate = 2e-6, b.bco_udm = true;
  auto ch = config_changes(a.to_json(), b.to_json());
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0], "bco_udm: false -> true");
  EXPECT_EQ(ch[1], "learning_rate: 1e-06 -> 2e-06");
  nlohmann::json old = a.to_json();
  old.erase("tpo_alpha");
  ch = config_changes(old, a.to_json());
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0], "tpo_alpha: (absent) -> 1.0");
}

TEST(Data, SplitEvalIsSeededAndDisjoint) {
  Dataset ds;
  ds.path = "x.jsonl";
  ds.hash = "h";
  for (size_t i = 0; i < 10; ++i) {
    Example e;
    e.line = i + 1;
    ds.rows.push_back(e);
  }
  Dataset t1 = ds, t2 = ds, t3 = ds;
  Dataset e1 = split_eval(t1, 0.3, 42), e2 = split_eval(t2, 0.3, 42), e3 = split_eval(t3, 0.3, 7);
  ASSERT_EQ(e1.rows.size(), 3u);
  ASSERT_EQ(t1.rows.size(), 7u);
  EXPECT_EQ(e1.path, "x.jsonl (eval split)");
  EXPECT_EQ(t1.path, "x.jsonl");
  EXPECT_EQ(e1.hash, "h");
  std::vector<size_t> l1, l2, l3, all;
  for (auto& r : e1.rows) l1.push_back(r.line);
  for (auto& r : e2.rows) l2.push_back(r.line);
  for (auto& r : e3.rows) l3.push_back(r.line);
  EXPECT_EQ(l1, l2);  // the same seed, the same rows
  EXPECT_NE(l1, l3);  // another seed, other rows (for this seed pair)
  // The rows are the first three of epoch_order's Fisher-Yates with the split's
  // seed, kept in file order.
  std::vector<size_t> order(10);
  for (size_t i = 0; i < 10; ++i) order[i] = i;
  Rng rng(static_cast<uint64_t>(42) ^ 0x5eed5eedull);
  shuffle(order, rng);
  std::vector<size_t> want = {order[0] + 1, order[1] + 1, order[2] + 1};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(l1, want);
  for (auto& r : t1.rows) all.push_back(r.line);
  for (size_t x : l1) all.push_back(x);
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(all[i], i + 1);
  // at least one eval row; never all rows
  Dataset small = ds;
  EXPECT_EQ(split_eval(small, 0.01, 1).rows.size(), 1u);
  Dataset two = ds;
  two.rows.resize(1);
  EXPECT_THROW(split_eval(two, 0.5, 1), Error);
}

TEST(Data, OptionsAndKlPairs) {
  TrainConfig c;
  c.max_length = 77, c.max_prompt_length = 33, c.max_completion_length = 12, c.truncation_mode = "keep_start";
  c.mask_tool_observations = false;
  DataOptions o = data_options(c);
  EXPECT_EQ(o.max_length, 77);
  EXPECT_EQ(o.max_prompt_length, 33);
  EXPECT_EQ(o.max_completion_length, 12);
  EXPECT_EQ(o.truncation_mode, "keep_start");
  EXPECT_FALSE(o.mask_tool_observations);
  Dataset ds;
  ds.rows.resize(5);
  // chunks {0,1,2} and {3,4}: each row pairs with the previous one of its chunk
  EXPECT_EQ(kl_pairs(ds, 3), (std::vector<int64_t>{2, 0, 1, 4, 3}));
  // epoch orders: a permutation, seeded, different per epoch
  auto o0 = epoch_order(20, 42, 0), o1 = epoch_order(20, 42, 1);
  EXPECT_EQ(o0, epoch_order(20, 42, 0));
  EXPECT_NE(o0, o1);
  std::sort(o1.begin(), o1.end());
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(o1[i], i);
}
