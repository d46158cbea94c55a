// The UNet, the DDPM schedule and DDIM timesteps, and the diffusers-layout
// files written and read back (also the shipped base model).
#include <gtest/gtest.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "diffusion/ddpm.h"
#include "diffusion/diffusers_io.h"
#include "diffusion/t2i.h"
#include "diffusion/unet.h"
#include "io/safetensors.h"

using namespace prefopt::diffusion;
using json = nlohmann::json;

namespace {
std::string tmp_dir(const std::string& name) {
  const std::string d = "/tmp/prefopt_t2i_" + name + "_" + std::to_string(getpid());
  prefopt::remove_all(d);
  prefopt::make_dirs(d);
  return d;
}
UNetConfig small() {
  UNetConfig c;
  c.base_channels = 8;
  c.cond_dim = 16;
  c.time_embed_dim = 8;
  c.token_dim = 4;
  c.norm_groups = 4;
  return c;
}
}  // namespace

TEST(DiffusionSchedule, LinearAndCosineValues) {
  SchedulerConfig lin;
  lin.beta_schedule = "linear";
  const Schedule a(lin);
  EXPECT_NEAR(a.alphas_cumprod()[0], 1 - 1e-4, 1e-15);
  EXPECT_NEAR(a.alphas_cumprod()[1], (1 - 1e-4) * (1 - (1e-4 + (0.02 - 1e-4) / 999)), 1e-15);
  const Schedule c(SchedulerConfig{});
  // Cosine: ᾱ_0 = 1 - β_0 with β_0 = 1 - f(1/T)/f(0), f(u) = cos²((u + 0.008)/1.008 · π/2).
  auto f = [](double u) { return std::pow(std::cos((u + 0.008) / 1.008 * M_PI / 2), 2); };
  EXPECT_NEAR(c.alphas_cumprod()[0], f(0.001) / f(0), 1e-12);
  for (int t = 1; t < 1000; ++t) ASSERT_LT(c.alphas_cumprod()[t], c.alphas_cumprod()[t - 1]);
  EXPECT_LT(c.alphas_cumprod()[999], 1e-4);
  EXPECT_EQ(c.ddim_timesteps(4), (std::vector<int64_t>{999, 749, 499, 249}));
  const auto ts = c.ddim_timesteps(20);
  EXPECT_EQ(ts.front(), 999);
  EXPECT_EQ(ts.back(), 49);
}

TEST(DiffusionUNet, ShapesAndConditioning) {
  TinyUNet m(small(), 3);
  auto x = at::randn({2, 3, 16, 16});
  auto t = at::tensor(std::vector<int64_t>{1, 500});
  auto tok = tokens_tensor({Caption{0, 0, 0, 1, 1}, Caption{0, 0, 0, 1, 1}});
  // Zero-initialised output conv: ε = 0 at the start.
  EXPECT_EQ(m.forward(x, t, tok).abs().max().item<float>(), 0.0f);
  for (auto& [n, p] : m.params()) p.add_(at::randn(p.sizes()) * 0.1);
  auto e = m.forward(x, t, tok);
  EXPECT_EQ(e.sizes(), x.sizes());
  // Swapping the two colour words changes the output (word order matters: binding).
  auto tok2 = tokens_tensor({Caption{1, 0, 0, 0, 1}, Caption{1, 0, 0, 0, 1}});
  EXPECT_GT((m.forward(x, t, tok2) - e).abs().max().item<float>(), 1e-4);
}

// Cross-attention: zero-initialised output (the net starts as the FiLM-only
// net's function), then one block against a by-hand computation, and the
// config round trip.
TEST(DiffusionUNet, CrossAttention) {
  UNetConfig c = small();
  c.cross_attention_dim = 8;
  c.attention_heads = 2;
  TinyUNet m(c, 3);
  for (const char* n : {"down.1.attn", "mid.attn", "up.1.attn", "up.0.attn"})
    ASSERT_TRUE(m.params().count(std::string(n) + ".to_q.weight")) << n;
  EXPECT_EQ(m.params().count("down.0.attn.to_q.weight"), 0u);
  for (auto& [n, p] : m.params())
    if (n.find(".attn.") == std::string::npos) p.add_(at::randn(p.sizes()) * 0.1);
  auto x = at::randn({2, 3, 16, 16});
  auto t = at::tensor(std::vector<int64_t>{1, 500});
  auto tok = tokens_tensor({Caption{0, 0, 0, 1, 1}, Caption{2, 1, 3, 3, 2}});
  // to_out is zero: the attention blocks add nothing, whatever q, k, v are.
  auto e0 = m.forward(x, t, tok);
  for (auto& [n, p] : m.params())
    if (n.find(".attn.") != std::string::npos && n.find("to_out") == std::string::npos) p.add_(at::randn(p.sizes()));
  EXPECT_TRUE(at::allclose(m.forward(x, t, tok), e0, 0, 0));
  for (auto& [n, p] : m.params())
    if (n.find("to_out") != std::string::npos) p.add_(at::randn(p.sizes()) * 0.1);
  EXPECT_GT((m.forward(x, t, tok) - e0).abs().max().item<float>(), 1e-4);
  // One block by hand, at one position of a 16-channel 8x8 map, head by head.
  const int64_t ch = 16, T = 8;
  auto feat = at::randn({1, ch, 8, 8});
  auto emb = at::randn({1, T, c.token_dim});
  auto P = [&](const std::string& n) { return m.params().at("mid.attn." + n); };
  auto h = at::group_norm(feat, c.norm_groups, P("norm.weight"), P("norm.bias"), 1e-5);
  const int64_t pos = 9;  // (1, 1)
  auto hv = h.reshape({ch, 64}).select(1, pos);                       // (C)
  auto q = at::matmul(P("to_q.weight"), hv) + P("to_q.bias");          // (8)
  auto k = at::matmul(emb[0], P("to_k.weight").t()) + P("to_k.bias");  // (T, 8)
  auto v = at::matmul(emb[0], P("to_v.weight").t()) + P("to_v.bias");
  std::vector<at::Tensor> heads;
  for (int hd = 0; hd < 2; ++hd) {
    auto qh = q.slice(0, 4 * hd, 4 * hd + 4), kh = k.slice(1, 4 * hd, 4 * hd + 4), vh = v.slice(1, 4 * hd, 4 * hd + 4);
    std::vector<double> s(T);
    double mx = -1e30, z = 0;
    for (int64_t j = 0; j < T; ++j) mx = std::max(mx, s[j] = (qh * kh[j]).sum().item<double>() / 2.0);
    for (auto& sj : s) z += (sj = std::exp(sj - mx));
    auto acc = at::zeros({4});
    for (int64_t j = 0; j < T; ++j) acc += vh[j] * (s[j] / z);
    heads.push_back(acc);
  }
  auto want = feat.reshape({ch, 64}).select(1, pos) + at::matmul(P("to_out.weight"), at::cat(heads)) + P("to_out.bias");
  auto got = m.attention_for_test("mid.attn", feat, emb).reshape({ch, 64}).select(1, pos);
  EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max().item<float>();
  // Config round trip keeps the attention fields; an inconsistent width is an error.
  auto j = to_json(c);
  EXPECT_EQ(unet_config_from_json(j, "x").cross_attention_dim, 8);
  j["attention_heads"] = 3;
  EXPECT_THROW(unet_config_from_json(j, "x"), prefopt::Error);
  j.erase("cross_attention_dim");
  EXPECT_EQ(unet_config_from_json(j, "x").cross_attention_dim, 0);  // older files: FiLM only
}

TEST(DiffusionFiles, DiffusersLayoutRoundTrip) {
  const std::string d = tmp_dir("layout");
  TinyUNet m(small(), 5);
  for (auto& [n, p] : m.params()) p.add_(at::randn(p.sizes()) * 0.1);
  save_pipeline(d + "/model", m, SchedulerConfig{}, json{{"made_by", "test"}});
  const json index = json::parse(prefopt::read_file(d + "/model/model_index.json"));
  EXPECT_EQ(index["_class_name"], "PrefoptT2IPipeline");
  EXPECT_EQ(index["scheduler"], json({"diffusers", "DDPMScheduler"}));
  EXPECT_EQ(index["unet"], json({"prefopt", "PrefoptTinyUNet"}));
  const json sc = json::parse(prefopt::read_file(d + "/model/scheduler/scheduler_config.json"));
  EXPECT_EQ(sc["_class_name"], "DDPMScheduler");
  EXPECT_EQ(sc["num_train_timesteps"], 1000);
  EXPECT_EQ(sc["beta_schedule"], "squaredcos_cap_v2");
  EXPECT_EQ(sc["prediction_type"], "epsilon");
  EXPECT_DOUBLE_EQ(sc["beta_start"].get<double>(), 0.0001);
  const json uc = json::parse(prefopt::read_file(d + "/model/unet/config.json"));
  EXPECT_EQ(uc["_class_name"], "PrefoptTinyUNet");
  EXPECT_EQ(uc["base_channels"], 8);
  prefopt::io::SafetensorsFile st(d + "/model/unet/diffusion_pytorch_model.safetensors");
  EXPECT_EQ(st.header().tensors.size(), m.params().size());
  EXPECT_TRUE(st.has("conv_in.weight"));
  const auto p = load_pipeline(d + "/model");
  for (const auto& [n, t] : m.params()) ASSERT_TRUE(at::equal(p.unet.params().at(n), t)) << n;
  auto x = at::randn({2, 3, 16, 16});
  auto t = at::tensor(std::vector<int64_t>{3, 900});
  auto tok = tokens_tensor({Caption{0, 0, 0, 1, 1}, Caption{2, 1, 3, 3, 2}});
  EXPECT_TRUE(at::equal(p.unet.forward(x, t, tok), m.forward(x, t, tok)));
  // Broken files are errors naming the file.
  prefopt::atomic_write(d + "/model/scheduler/scheduler_config.json", "{\"num_train_timesteps\": 1000, "
                                                                        "\"prediction_type\": \"v_prediction\"}");
  EXPECT_THROW(load_pipeline(d + "/model"), prefopt::Error);
  std::remove((d + "/model/unet/diffusion_pytorch_model.safetensors").c_str());
  EXPECT_THROW(load_pipeline(d + "/model"), prefopt::Error);
  prefopt::remove_all(d);
}

TEST(DiffusionFiles, ShippedBaseModelLoads) {
  const std::string dir = std::string(PREFOPT_SOURCE_DIR) + "/assets/t2i_base";
  ASSERT_TRUE(prefopt::is_directory(dir)) << "the base model ships in assets/t2i_base";
  const auto p = load_pipeline(dir);
  const json index = json::parse(prefopt::read_file(dir + "/model_index.json"));
  EXPECT_EQ(index["prefopt"]["made_by"], "prefopt t2i-pretrain");
  EXPECT_GT(p.unet.num_parameters(), 100000);
  // A few MB at most.
  EXPECT_LT(prefopt::read_file(dir + "/unet/diffusion_pytorch_model.safetensors").size(), 8u << 20);
  EXPECT_GT(p.unet.config().cross_attention_dim, 0);
  // Good enough to be judged: on these 96 fixed pairs (the demo's evaluation seed) it scored 46.9%
  // (45 of 96) when shipped, 38.3% on the pretraining probe; under 20% (over 3 s.e. below the
  // lower of the two) the demo would have nothing to measure.
  const Schedule sched(p.scheduler);
  const auto r = evaluate(p.unet, sched, make_eval_set(96, 20251129), 20, 3.0);
  EXPECT_GT(r.accuracy, 0.20);
  EXPECT_GT(r.valid_two_objects, 0.6);
}
