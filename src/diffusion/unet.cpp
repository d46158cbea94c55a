#include "diffusion/unet.h"

#include <ATen/ATen.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace prefopt::diffusion {

using json = nlohmann::json;

json to_json(const UNetConfig& c) {
  return json{{"sample_size", c.sample_size},     {"in_channels", c.in_channels},
              {"out_channels", c.out_channels},   {"base_channels", c.base_channels},
              {"cond_dim", c.cond_dim},           {"time_embed_dim", c.time_embed_dim},
              {"token_dim", c.token_dim},         {"vocab_size", c.vocab_size},
              {"max_tokens", c.max_tokens},       {"norm_groups", c.norm_groups},
              {"cross_attention_dim", c.cross_attention_dim}, {"attention_heads", c.attention_heads}};
}

UNetConfig unet_config_from_json(const json& j, const std::string& where) {
  UNetConfig c;
  auto get = [&](const char* k, int& v) {
    PREFOPT_REQUIRE(j.contains(k) && j[k].is_number_integer() && j[k].get<int>() > 0, where,
                    std::string("field '") + k + "' missing or not a positive integer",
                    "write the config with prefopt t2i-pretrain");
    v = j[k].get<int>();
  };
  get("sample_size", c.sample_size);
  get("in_channels", c.in_channels);
  get("out_channels", c.out_channels);
  get("base_channels", c.base_channels);
  get("cond_dim", c.cond_dim);
  get("time_embed_dim", c.time_embed_dim);
  get("token_dim", c.token_dim);
  get("vocab_size", c.vocab_size);
  get("max_tokens", c.max_tokens);
  get("norm_groups", c.norm_groups);
  // Optional (absent in models without attention).
  if (j.contains("cross_attention_dim")) {
    PREFOPT_REQUIRE(j["cross_attention_dim"].is_number_integer() && j["cross_attention_dim"].get<int>() >= 0, where,
                    "field 'cross_attention_dim' is not a non-negative integer", "write the config with prefopt t2i-pretrain");
    c.cross_attention_dim = j["cross_attention_dim"].get<int>();
  }
  if (c.cross_attention_dim > 0) {
    get("attention_heads", c.attention_heads);
    PREFOPT_REQUIRE(c.cross_attention_dim % c.attention_heads == 0, where,
                    "cross_attention_dim is not a multiple of attention_heads", "write the config with prefopt t2i-pretrain");
  }
  return c;
}

namespace {
// PyTorch's default init for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
at::Tensor uniform_init(std::vector<int64_t> shape, int64_t fan_in, at::Generator& gen) {
  const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return at::empty(shape).uniform_(-b, b, gen);
}
}  // namespace

TinyUNet::TinyUNet(const UNetConfig& cfg, uint64_t seed) : cfg_(cfg) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto linear = [&](const std::string& n, int out, int in) {
    params_[n + ".weight"] = uniform_init({out, in}, in, gen);
    params_[n + ".bias"] = uniform_init({out}, in, gen);
  };
  auto conv = [&](const std::string& n, int out, int in, int k, bool zero = false) {
    params_[n + ".weight"] = zero ? at::zeros({out, in, k, k}) : uniform_init({out, in, k, k}, in * k * k, gen);
    params_[n + ".bias"] = zero ? at::zeros({out}) : uniform_init({out}, in * k * k, gen);
  };
  auto norm = [&](const std::string& n, int ch) {
    params_[n + ".weight"] = at::ones({ch});
    params_[n + ".bias"] = at::zeros({ch});
  };
  auto res = [&](const std::string& n, int in, int out) {
    norm(n + ".norm1", in);
    conv(n + ".conv1", out, in, 3);
    linear(n + ".film", 2 * out, cfg.cond_dim);
    norm(n + ".norm2", out);
    conv(n + ".conv2", out, out, 3, /*zero=*/true);
    if (in != out) conv(n + ".skip", out, in, 1);
  };
  const int c = cfg.base_channels, c2 = 2 * cfg.base_channels, d = cfg.cond_dim;
  auto attn = [&](const std::string& n, int ch) {
    if (cfg.cross_attention_dim <= 0) return;
    const int a = cfg.cross_attention_dim;
    norm(n + ".norm", ch);
    linear(n + ".to_q", a, ch);
    linear(n + ".to_k", a, cfg.token_dim);
    linear(n + ".to_v", a, cfg.token_dim);
    params_[n + ".to_out.weight"] = at::zeros({ch, a});
    params_[n + ".to_out.bias"] = at::zeros({ch});
  };
  linear("time_embedding.linear_1", d, cfg.time_embed_dim);
  linear("time_embedding.linear_2", d, d);
  params_["text_encoder.token_embedding.weight"] = at::empty({cfg.vocab_size, cfg.token_dim}).normal_(0, 1, gen);
  params_["text_encoder.position_embedding.weight"] = at::empty({cfg.max_tokens, cfg.token_dim}).normal_(0, 1, gen);
  linear("text_encoder.linear_1", d, cfg.max_tokens * cfg.token_dim);
  linear("text_encoder.linear_2", d, d);
  conv("conv_in", c, cfg.in_channels + 2, 3);
  res("down.0.res", c, c);
  conv("down.0.downsample", c2, c, 3);
  res("down.1.res", c2, c2);
  attn("down.1.attn", c2);
  conv("down.1.downsample", c2, c2, 3);
  res("mid.res", c2, c2);
  attn("mid.attn", c2);
  res("up.1.res", c2 + c2, c2);
  attn("up.1.attn", c2);
  res("up.0.res", c2 + c, c);
  attn("up.0.attn", c);
  norm("norm_out", c);
  conv("conv_out", cfg.out_channels, c, 3, /*zero=*/true);
}

at::Tensor TinyUNet::p(const std::string& n) const {
  auto it = params_.find(n);
  PREFOPT_ASSERT(it != params_.end(), "TinyUNet: no parameter {}", n);
  return it->second;
}

at::Tensor timestep_embedding(const at::Tensor& t, int dim) {
  const int half = dim / 2;
  auto freqs = at::exp(at::arange(half, at::kFloat) * (-std::log(10000.0) / half));
  auto args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  return at::cat({at::cos(args), at::sin(args)}, 1);
}

at::Tensor TinyUNet::res_block(const std::string& n, const at::Tensor& x, const at::Tensor& cond) const {
  const int g = cfg_.norm_groups;
  auto h = at::silu(at::group_norm(x, g, p(n + ".norm1.weight"), p(n + ".norm1.bias"), 1e-5));
  h = at::conv2d(h, p(n + ".conv1.weight"), p(n + ".conv1.bias"), 1, 1);
  auto film = at::linear(at::silu(cond), p(n + ".film.weight"), p(n + ".film.bias"));
  auto ss = film.chunk(2, 1);
  h = at::group_norm(h, g, p(n + ".norm2.weight"), p(n + ".norm2.bias"), 1e-5);
  h = h * (1 + ss[0].unsqueeze(-1).unsqueeze(-1)) + ss[1].unsqueeze(-1).unsqueeze(-1);
  h = at::conv2d(at::silu(h), p(n + ".conv2.weight"), p(n + ".conv2.bias"), 1, 1);
  auto skip = params_.count(n + ".skip.weight") ? at::conv2d(x, p(n + ".skip.weight"), p(n + ".skip.bias")) : x;
  return skip + h;
}

at::Tensor TinyUNet::attention(const std::string& n, const at::Tensor& x, const at::Tensor& tok) const {
  if (cfg_.cross_attention_dim <= 0) return x;
  const int64_t b = x.size(0), ch = x.size(1), hw = x.size(2) * x.size(3), T = tok.size(1);
  const int64_t heads = cfg_.attention_heads, dh = cfg_.cross_attention_dim / heads;
  auto h = at::group_norm(x, cfg_.norm_groups, p(n + ".norm.weight"), p(n + ".norm.bias"), 1e-5);
  h = h.reshape({b, ch, hw}).transpose(1, 2);                                               // (B, HW, C)
  auto q = at::linear(h, p(n + ".to_q.weight"), p(n + ".to_q.bias")).view({b, hw, heads, dh}).transpose(1, 2);
  auto k = at::linear(tok, p(n + ".to_k.weight"), p(n + ".to_k.bias")).view({b, T, heads, dh}).transpose(1, 2);
  auto v = at::linear(tok, p(n + ".to_v.weight"), p(n + ".to_v.bias")).view({b, T, heads, dh}).transpose(1, 2);
  auto w = at::softmax(at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(dh)), -1);  // (B, h, HW, T)
  auto o = at::matmul(w, v).transpose(1, 2).reshape({b, hw, heads * dh});
  o = at::linear(o, p(n + ".to_out.weight"), p(n + ".to_out.bias"));                    // (B, HW, C)
  return x + o.transpose(1, 2).reshape(x.sizes());
}

at::Tensor TinyUNet::forward(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& tokens) const {
  const int64_t b = x_t.size(0), hh = x_t.size(2), ww = x_t.size(3);
  // Conditioning vector: time + text.
  auto te = timestep_embedding(t, cfg_.time_embed_dim);
  te = at::linear(te, p("time_embedding.linear_1.weight"), p("time_embedding.linear_1.bias"));
  te = at::linear(at::silu(te), p("time_embedding.linear_2.weight"), p("time_embedding.linear_2.bias"));
  auto tok = at::embedding(p("text_encoder.token_embedding.weight"), tokens) +
             p("text_encoder.position_embedding.weight").unsqueeze(0);
  auto txt = at::linear(tok.reshape({b, -1}), p("text_encoder.linear_1.weight"), p("text_encoder.linear_1.bias"));
  txt = at::linear(at::silu(txt), p("text_encoder.linear_2.weight"), p("text_encoder.linear_2.bias"));
  const auto cond = te + txt;
  // Coordinates in [-1, 1] as two extra input channels.
  auto ys = at::linspace(-1, 1, hh, x_t.options()).view({1, 1, hh, 1}).expand({b, 1, hh, ww});
  auto xs = at::linspace(-1, 1, ww, x_t.options()).view({1, 1, 1, ww}).expand({b, 1, hh, ww});
  auto h = at::conv2d(at::cat({x_t, xs, ys}, 1), p("conv_in.weight"), p("conv_in.bias"), 1, 1);
  auto s0 = res_block("down.0.res", h, cond);                                                       // C @16
  auto s1 = res_block("down.1.res", at::conv2d(s0, p("down.0.downsample.weight"), p("down.0.downsample.bias"), 2, 1),
                      cond);                                                                        // 2C @8
  s1 = attention("down.1.attn", s1, tok);
  auto m = res_block("mid.res", at::conv2d(s1, p("down.1.downsample.weight"), p("down.1.downsample.bias"), 2, 1),
                     cond);                                                                         // 2C @4
  m = attention("mid.attn", m, tok);
  auto u1 = res_block("up.1.res", at::cat({at::upsample_nearest2d(m, {hh / 2, ww / 2}), s1}, 1), cond);  // 2C @8
  u1 = attention("up.1.attn", u1, tok);
  auto u0 = res_block("up.0.res", at::cat({at::upsample_nearest2d(u1, {hh, ww}), s0}, 1), cond);          // C @16
  u0 = attention("up.0.attn", u0, tok);
  auto out = at::silu(at::group_norm(u0, cfg_.norm_groups, p("norm_out.weight"), p("norm_out.bias"), 1e-5));
  return at::conv2d(out, p("conv_out.weight"), p("conv_out.bias"), 1, 1);
}

std::vector<std::pair<std::string, at::Tensor>> TinyUNet::named_parameters() const {
  return {params_.begin(), params_.end()};
}

void TinyUNet::set_requires_grad(bool on) {
  for (auto& [n, t] : params_) t.requires_grad_(on);
}

TinyUNet TinyUNet::clone() const {
  TinyUNet o;
  o.cfg_ = cfg_;
  for (const auto& [n, t] : params_) o.params_[n] = t.detach().clone();
  return o;
}

void TinyUNet::load(const std::map<std::string, at::Tensor>& tensors, const std::string& where) {
  PREFOPT_REQUIRE(tensors.size() == params_.size(), where,
                  fmt::format("{} tensors, the UNet config has {}", tensors.size(), params_.size()),
                  "the weights and unet/config.json must come from the same model");
  for (auto& [n, t] : params_) {
    auto it = tensors.find(n);
    PREFOPT_REQUIRE(it != tensors.end(), where, "tensor '" + n + "' missing", "re-export the model");
    PREFOPT_REQUIRE(it->second.sizes() == t.sizes(), where, "tensor '" + n + "' has another shape",
                    "the weights and unet/config.json must come from the same model");
    at::NoGradGuard g;
    t.copy_(it->second.to(at::kFloat));
  }
}

int64_t TinyUNet::num_parameters() const {
  int64_t n = 0;
  for (const auto& [k, t] : params_) n += t.numel();
  return n;
}

}  // namespace prefopt::diffusion
