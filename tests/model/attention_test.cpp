// The memory-lean (chunked) attention against the eager oracle: the kernel on
// random tensors (several chunks, GQA, soft-cap, padding rows that are fully
// masked, a sliding window), then every family fixture end to end (forward
// hidden states and the gradients of every weight), and gradient
// checkpointing (same hidden states and gradients as without, with both
// attentions, and with LoRA adapters whose dropout draws the same masks in
// the recomputation).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "model/attention.h"
#include "model/lora.h"
#include "model/model.h"

using namespace prefopt;
using json = nlohmann::json;

namespace {

double max_rel(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(1e-12, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

struct KernelCase {
  int64_t B, Hq, Hkv, T, S, D, chunk;
  double softcap;
  int64_t window;  // 0 = none
};

TEST(Attention, ChunkedEqualsEagerKernel) {
  for (const KernelCase& kc : {KernelCase{2, 4, 2, 7, 7, 8, 3, 0.0, 0}, KernelCase{3, 6, 2, 9, 9, 4, 2, 5.0, 0},
                               KernelCase{2, 2, 2, 10, 10, 8, 4, 0.0, 3}, KernelCase{1, 3, 1, 1, 6, 8, 0, 0.0, 0}}) {
    at::manual_seed(11);
    auto opt = at::TensorOptions().dtype(at::kDouble);
    auto q = at::randn({kc.B, kc.Hq, kc.T, kc.D}, opt).requires_grad_(true);
    auto k = at::randn({kc.B, kc.Hkv, kc.S, kc.D}, opt).requires_grad_(true);
    auto v = at::randn({kc.B, kc.Hkv, kc.S, kc.D}, opt).requires_grad_(true);
    // causal (queries are the last T keys), right padding on row 0 (last 2 keys
    // padded: the last 2 query rows see no... only their own masked keys' past).
    const int64_t past = kc.S - kc.T;
    auto qi = at::arange(past, kc.S, at::kLong).view({kc.T, 1}), ki = at::arange(0, kc.S, at::kLong).view({1, kc.S});
    auto allowed = (ki <= qi).view({1, 1, kc.T, kc.S}).repeat({kc.B, 1, 1, 1});
    if (kc.window > 0) allowed = allowed & ((qi - ki) < kc.window).view({1, 1, kc.T, kc.S});
    if (kc.S > 2) allowed[0].select(2, 0).fill_(false);  // key 0 of row 0 is padding
    if (kc.T > 1 && kc.B > 1) allowed[1][0][0].fill_(false);  // row 1's first query sees nothing (a pad query)
    AttentionArgs a;
    a.scale = 0.35, a.softcap = kc.softcap, a.min_value = std::numeric_limits<double>::lowest(), a.chunk = kc.chunk;
    auto w = at::randn({kc.B, kc.Hq, kc.T, kc.D}, opt);
    auto oe = attention_eager(q, k, v, allowed, a);
    auto ge = torch::autograd::grad({(oe * w).sum()}, {q, k, v});
    auto oc = attention_chunked(q, k, v, allowed, a);
    auto gc = torch::autograd::grad({(oc * w).sum()}, {q, k, v});
    EXPECT_LE(max_rel(oc, oe), 1e-12) << "forward, T=" << kc.T;
    for (int i = 0; i < 3; ++i) EXPECT_LE(max_rel(gc[i], ge[i]), 1e-11) << "grad " << "qkv"[i] << ", T=" << kc.T;
    EXPECT_GT(ge[0].abs().max().item<double>(), 0.0);
  }
}

// A negative control: a wrong mask is seen (the comparison can fail).
TEST(Attention, ComparisonSeesAMaskError) {
  at::manual_seed(3);
  auto q = at::randn({1, 2, 5, 4}, at::kDouble), k = at::randn({1, 2, 5, 4}, at::kDouble), v = at::randn({1, 2, 5, 4}, at::kDouble);
  auto causal = at::ones({5, 5}, at::kBool).tril().view({1, 1, 5, 5});
  AttentionArgs a;
  a.scale = 0.5, a.min_value = -1e300, a.chunk = 2;
  auto bad = causal.clone();
  bad[0][0][3][4] = true;  // a future key
  EXPECT_GT(max_rel(attention_chunked(q, k, v, bad, a), attention_eager(q, k, v, causal, a)), 1e-3);
}

std::string dir_of(const std::string& fam) { return std::string(PREFOPT_SHARED_DATA) + "/models/" + fam; }

at::Tensor to_tensor(const json& rows) {
  std::vector<int64_t> flat;
  for (auto& r : rows)
    for (auto& x : r) flat.push_back(x.get<int64_t>());
  return at::tensor(flat, at::kLong).view({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

struct Pass {
  at::Tensor hidden;
  std::vector<at::Tensor> grads;
};

// Hidden states of the fixture's padded batch and the gradients of every
// trained tensor (the weights, or the adapters when present) of a fixed
// random projection of them.
Pass run_model(CausalLM& m, AttentionKind kind, bool checkpointing, const json& ref, bool adapters = false) {
  m.set_attention(kind);
  m.set_gradient_checkpointing(checkpointing);
  std::vector<at::Tensor> params;
  if (adapters) {
    for (auto& [n, t] : m.lora()->named_parameters()) params.push_back(t);
  } else {
    for (auto& [n, t] : m.named_parameters()) params.push_back(t);
  }
  for (auto& p : params) p.mutable_grad() = at::Tensor();
  auto ids = to_tensor(ref["input_ids"]), mask = to_tensor(ref["attention_mask"]);
  at::manual_seed(5);  // adapter dropout
  auto h = m.forward_hidden(ids, position_ids_from_mask(mask), mask);
  at::manual_seed(9);
  auto w = at::randn(h.sizes(), h.options());
  (h * w * mask.unsqueeze(-1).to(h.dtype())).sum().backward();
  Pass r{h.detach(), {}};
  for (auto& p : params) r.grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return r;
}

void expect_same(const Pass& a, const Pass& b, double tol, const std::string& what) {
  EXPECT_LE(max_rel(a.hidden, b.hidden), tol) << what << ": hidden";
  ASSERT_EQ(a.grads.size(), b.grads.size());
  double worst = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) worst = std::max(worst, max_rel(a.grads[i], b.grads[i]));
  EXPECT_LE(worst, tol) << what << ": gradients";
}

class Families : public ::testing::TestWithParam<std::string> {};

TEST_P(Families, ChunkedAndCheckpointedEqualEager) {
  auto dir = dir_of(GetParam());
  auto ref = json::parse(read_file(dir + "/reference.json"));
  auto m = CausalLM::from_pretrained(dir);
  m->set_requires_grad(true);
  Pass eager = run_model(*m, AttentionKind::Eager, false, ref);
  Pass chunked = run_model(*m, AttentionKind::Chunked, false, ref);
  Pass ckpt = run_model(*m, AttentionKind::Chunked, true, ref);
  Pass ckpt_eager = run_model(*m, AttentionKind::Eager, true, ref);
  expect_same(chunked, eager, 1e-5, "chunked vs eager");
  expect_same(ckpt, chunked, 1e-5, "checkpointed vs not (chunked)");
  expect_same(ckpt_eager, eager, 1e-5, "checkpointed vs not (eager)");
  double gmax = 0;
  for (auto& g : eager.grads) gmax = std::max(gmax, g.abs().max().item<double>());
  EXPECT_GT(gmax, 0.0);
  // Auto (eager) under no-grad and with grad: equal to eager's forward.
  m->set_attention(AttentionKind::Auto);
  at::NoGradGuard ng;
  auto ids = to_tensor(ref["input_ids"]), mask = to_tensor(ref["attention_mask"]);
  EXPECT_LE(max_rel(m->forward_hidden(ids, position_ids_from_mask(mask), mask), eager.hidden), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(All, Families, ::testing::Values("llama", "mistral", "qwen2", "gemma", "gemma2", "gpt2"));

TEST(Checkpointing, LoraAdaptersWithDropout) {
  auto dir = dir_of("llama");
  auto ref = json::parse(read_file(dir + "/reference.json"));
  auto m = CausalLM::from_pretrained(dir);
  m->set_requires_grad(false);
  LoraConfig lc;
  lc.r = 4, lc.lora_alpha = 8, lc.lora_dropout = 0.3;
  lc.target_modules = parse_lora_targets("all-linear", "test");
  attach_lora(*m, lc, 3);
  // B starts at zero: give it values so every adapter term counts.
  for (auto& side : m->lora()->B)
    for (auto& t : side)
      if (t.defined()) t.detach().normal_(0, 0.05);
  for (auto& [n, t] : m->lora()->named_parameters()) t.requires_grad_(true);
  m->lora()->training = true;
  Pass plain = run_model(*m, AttentionKind::Chunked, false, ref, true);
  Pass ckpt = run_model(*m, AttentionKind::Chunked, true, ref, true);
  expect_same(ckpt, plain, 1e-5, "LoRA with dropout, checkpointed vs not");
  // Negative control: a different dropout draw is visible.
  m->set_gradient_checkpointing(false);
  at::manual_seed(6);
  auto ids = to_tensor(ref["input_ids"]), mask = to_tensor(ref["attention_mask"]);
  auto h = m->forward_hidden(ids, position_ids_from_mask(mask), mask);
  EXPECT_GT(max_rel(h.detach(), plain.hidden), 1e-4);
}

}  // namespace
