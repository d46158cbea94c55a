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
}
