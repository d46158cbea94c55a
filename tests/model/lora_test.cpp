// LoRA adapters: identity at init, the adapters-off switch, PEFT's init
// bounds, the layer's gradient against finite differences, PEFT's file
// layout (keys, shapes, adapter_config.json), load round trip and merge.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "model/model.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

const std::string kLlama = std::string(PREFOPT_SHARED_DATA) + "/models/llama";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_lora_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

LoraConfig cfg_all(int64_t r = 4, double alpha = 8) {
  LoraConfig c;
  c.r = r, c.lora_alpha = alpha, c.lora_dropout = 0.0;
  c.target_modules = parse_lora_targets("all-linear", "test");
  c.base_model_name_or_path = kLlama;
  return c;
}

std::pair<at::Tensor, at::Tensor> batch() {
  auto ids = at::tensor(std::vector<int64_t>{5, 17, 100, 3, 250, 41, 7, 9, 12, 300, 2, 64}, at::kLong).view({2, 6});
  return {ids, at::ones({2, 6}, at::kLong)};
}

// Gives every B a random value so that the adapters change the output.
void randomize_b(CausalLM& m, double std = 0.05) {
  at::NoGradGuard g;
  at::manual_seed(7);
  for (auto& mods : m.lora()->B)
    for (auto& t : mods)
      if (t.defined()) t.normal_(0, std);
}

}  // namespace

TEST(Lora, TargetParsing) {
  EXPECT_EQ(parse_lora_targets("all-linear", "x").size(), 7u);
  EXPECT_EQ(parse_lora_targets("v_proj,q_proj", "x"), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(parse_lora_targets("[\"down_proj\", \"q_proj\"]", "x"), (std::vector<std::string>{"q_proj", "down_proj"}));
  EXPECT_THROW(parse_lora_targets("q_proj,lm_head", "x"), Error);
  EXPECT_THROW(parse_lora_targets("", "x"), Error);
}

TEST(Lora, FreshAdapterIsTheBaseModelExactly) {
  auto m = CausalLM::from_pretrained(kLlama);
  auto [ids, mask] = batch();
  auto base = m->forward(ids, mask);
  attach_lora(*m, cfg_all(), 1);
  // B = 0: the adapter term is exactly zero, so the logits are bit-identical.
  auto with = m->forward(ids, mask);
  EXPECT_TRUE(at::equal(base, with));
  // A is not zero (so it is B that keeps the output unchanged).
  EXPECT_GT(m->lora()->A[0][0].abs().max().item<float>(), 0.f);
  EXPECT_EQ(m->lora()->num_parameters(), 2 * (4 * (64 + 64) + 4 * (64 + 32) * 2 + 4 * (64 + 64) +
                                              4 * (64 + 128) * 3));
}

TEST(Lora, AdaptersOffGivesBaseLogits) {
  auto m = CausalLM::from_pretrained(kLlama);
  auto [ids, mask] = batch();
  auto base = m->forward(ids, mask);
  attach_lora(*m, cfg_all(), 1);
  randomize_b(*m);
  auto with = m->forward(ids, mask);
  EXPECT_GT((with - base).abs().max().item<float>(), 1e-3);  // negative control: adapters do act
  {
    AdaptersOff off(*m);
    EXPECT_TRUE(at::equal(m->forward(ids, mask), base));
  }
  EXPECT_TRUE(at::equal(m->forward(ids, mask), with));  // restored by the guard
  m->set_adapters_enabled(false);
  EXPECT_TRUE(at::equal(m->forward(ids, mask), base));
}

TEST(Lora, InitFollowsPeftKaimingUniform) {
  auto m = CausalLM::from_pretrained(kLlama);
  attach_lora(*m, cfg_all(16, 32), 3);
  // q_proj: in = 64 -> bound 1/8; down_proj: in = 128 -> bound 1/sqrt(128).
  for (auto [mi, in] : {std::pair<int, double>{0, 64.0}, {6, 128.0}}) {
    auto A = m->lora()->A[1][mi];
    const double bound = 1.0 / std::sqrt(in);
    EXPECT_LE(A.abs().max().item<double>(), bound);
    EXPECT_GT(A.abs().max().item<double>(), 0.95 * bound);
    // U(-b, b): variance b^2/3 (numel 1024 or 2048: within 10%).
    EXPECT_NEAR(A.var().item<double>(), bound * bound / 3, 0.1 * bound * bound / 3);
    EXPECT_EQ(m->lora()->B[1][mi].abs().max().item<float>(), 0.f);
  }
  EXPECT_DOUBLE_EQ(m->lora()->cfg.scale(), 2.0);
}

TEST(Lora, LayerGradientMatchesFiniteDifferences) {
  at::manual_seed(11);
  auto opt = at::TensorOptions().dtype(at::kDouble);
  auto x = at::randn({3, 5}, opt), w = at::randn({4, 5}, opt), b = at::randn({4}, opt);
  auto A = at::randn({2, 5}, opt).requires_grad_(true), B = at::randn({4, 2}, opt).requires_grad_(true);
  auto probe = at::randn({3, 4}, opt);
  const double s = 1.5;
  auto f = [&](const at::Tensor& a, const at::Tensor& bb) {
    return (lora_linear(x, w, b, a, bb, s, 0.0, true) * probe).sum();
  };
  // hand check of the forward: y = x w^T + b + s * x A^T B^T
  auto y = lora_linear(x, w, b, A, B, s, 0.0, false);
  EXPECT_LT((y - (at::matmul(x, w.t()) + b + s * at::matmul(at::matmul(x, A.t()), B.t()))).abs().max().item<double>(),
            1e-12);
  f(A, B).backward();
  const double h = 1e-6;
  for (auto* p : {&A, &B}) {
    auto g = p->grad();
    for (int64_t k = 0; k < p->numel(); ++k) {
      at::NoGradGuard ng;
      auto plus = p->detach().clone(), minus = p->detach().clone();
      plus.view(-1)[k] += h, minus.view(-1)[k] -= h;
      double fd = p == &A ? (f(plus, B) - f(minus, B)).item<double>() / (2 * h)
                          : (f(A, plus) - f(A, minus)).item<double>() / (2 * h);
      EXPECT_NEAR(g.view(-1)[k].item<double>(), fd, 1e-6) << (p == &A ? "A" : "B") << "[" << k << "]";
    }
  }
}

TEST(Lora, DropoutOnlyInTraining) {
  at::manual_seed(2);
  auto x = at::randn({64, 8}), w = at::randn({6, 8}), A = at::randn({2, 8}), B = at::randn({6, 2});
  auto eval = lora_linear(x, w, at::Tensor(), A, B, 2.0, 0.5, false);
  EXPECT_TRUE(at::equal(eval, lora_linear(x, w, at::Tensor(), A, B, 2.0, 0.5, false)));
  auto tr = lora_linear(x, w, at::Tensor(), A, B, 2.0, 0.5, true);
  EXPECT_GT((tr - eval).abs().max().item<float>(), 1e-3);
  // p = 0 in training is the eval forward
  EXPECT_TRUE(at::allclose(lora_linear(x, w, at::Tensor(), A, B, 2.0, 0.0, true), eval));
}

TEST(Lora, SavedAdapterHasPeftKeysShapesAndConfig) {
  auto m = CausalLM::from_pretrained(kLlama);
  LoraConfig c = cfg_all(4, 8);
  c.target_modules = parse_lora_targets("q_proj,v_proj,down_proj", "test");
  c.lora_dropout = 0.1;
  attach_lora(*m, c, 1);
  randomize_b(*m);
  const std::string dir = tmpdir("save");
  save_lora(*m, dir);
  io::SafetensorsFile f(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f.header().tensors.size(), 2u * 2 * 3);  // 2 layers x 3 modules x (A, B)
  const std::string q = "base_model.model.model.layers.0.self_attn.q_proj.";
  ASSERT_TRUE(f.has(q + "lora_A.weight"));
  EXPECT_EQ(f.info(q + "lora_A.weight").shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(f.info(q + "lora_B.weight").shape, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(f.info("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight").shape,
            (std::vector<int64_t>{32, 4}));  // Hkv * D = 2 * 16
  EXPECT_EQ(f.info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").shape,
            (std::vector<int64_t>{4, 128}));
  EXPECT_FALSE(f.has("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"));
  auto j = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["r"], 4);
  EXPECT_EQ(j["lora_alpha"], 8.0);
  EXPECT_EQ(j["lora_dropout"], 0.1);
  EXPECT_EQ(j["target_modules"], (nlohmann::json{"q_proj", "v_proj", "down_proj"}));
  EXPECT_EQ(j["base_model_name_or_path"], kLlama);
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["inference_mode"], true);
  EXPECT_TRUE(j["modules_to_save"].is_null());
  EXPECT_EQ(j["init_lora_weights"], true);

  // Round trip: a fresh base model + the saved adapter gives the same logits.
  auto [ids, mask] = batch();
  auto want = m->forward(ids, mask);
  auto m2 = CausalLM::from_pretrained(kLlama);
  load_lora(*m2, dir);
  EXPECT_TRUE(at::equal(m2->forward(ids, mask), want));
  EXPECT_EQ(m2->lora()->cfg.target_modules, c.target_modules);
}

TEST(Lora, LoadRejectsMismatchedAdapters) {
  auto m = CausalLM::from_pretrained(kLlama);
  attach_lora(*m, cfg_all(4, 8), 1);
  const std::string dir = tmpdir("bad");
  save_lora(*m, dir);
  // adapter_config.json claims r = 8 while the tensors have rank 4
  auto j = nlohmann::json::parse(read_file(dir + "/adapter_config.json"));
  j["r"] = 8;
  atomic_write(dir + "/adapter_config.json", j.dump());
  auto m2 = CausalLM::from_pretrained(kLlama);
  try {
    load_lora(*m2, dir);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [8, 64]"), std::string::npos) << e.what();
  }
  // fewer target modules than the file holds: unexpected tensors
  j["r"] = 4;
  j["target_modules"] = {"q_proj"};
  atomic_write(dir + "/adapter_config.json", j.dump());
  EXPECT_THROW(load_lora(*m2, dir), Error);
  j["target_modules"] = {"q_proj", "lm_head"};
  atomic_write(dir + "/adapter_config.json", j.dump());
  EXPECT_THROW(load_lora(*m2, dir), Error);
  EXPECT_FALSE(m2->lora());  // nothing attached by a failed load
}

TEST(Lora, MergeMatchesAdapterForward) {
  auto m = CausalLM::from_pretrained(kLlama);
  attach_lora(*m, cfg_all(4, 8), 1);
  randomize_b(*m);
  std::vector<std::vector<int64_t>> seqs = {{1, 5, 17, 100, 3, 250, 41, 7}, {1, 9, 12, 300, 2, 64}};
  auto want = token_logprobs(*m, seqs);
  std::vector<std::vector<float>> base;
  {
    AdaptersOff off(*m);
    base = token_logprobs(*m, seqs);
  }
  merge_lora(*m);
  EXPECT_FALSE(m->lora());
  auto got = token_logprobs(*m, seqs);
  double max_diff = 0, moved = 0;
  for (size_t i = 0; i < seqs.size(); ++i)
    for (size_t t = 0; t < want[i].size(); ++t) {
      max_diff = std::max(max_diff, std::abs(double(got[i][t]) - want[i][t]));
      moved = std::max(moved, std::abs(double(base[i][t]) - want[i][t]));
    }
  EXPECT_LE(max_diff, 1e-5);
  EXPECT_GT(moved, 1e-3);  // the adapter changed the log-probs, so the merge did something
}

TEST(Lora, Gpt2IsRejected) {
  auto m = CausalLM::from_pretrained(std::string(PREFOPT_SHARED_DATA) + "/models/gpt2");
  EXPECT_THROW(attach_lora(*m, cfg_all(), 1), Error);
}
