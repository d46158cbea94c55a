#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/model.h"

using namespace prefopt;
namespace fs = std::filesystem;

static std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_model_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}
static std::string model_dir(const std::string& fam) { return std::string(PREFOPT_SHARED_DATA) + "/models/" + fam; }

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, SaveLoadRoundTripIsBitIdentical) {
  for (std::string fam : {"llama", "qwen2", "gpt2", "gemma2"}) {
    auto m = CausalLM::from_pretrained(model_dir(fam));
    auto d = tmpdir("rt_" + fam);
    m->save_pretrained(d);
    auto m2 = CausalLM::from_pretrained(d);
    auto ids = at::arange(0, 10, at::kLong).view({1, 10});
    auto mask = at::ones({1, 10}, at::kLong);
    at::NoGradGuard ng;
    EXPECT_TRUE(at::equal(m->forward(ids, mask), m2->forward(ids, mask))) << fam;
    // tied lm_head omitted as HF does
    io::SafetensorsFile f(d + "/model.safetensors");
    EXPECT_EQ(f.has("lm_head.weight"), !m->config().tie_word_embeddings) << fam;
    EXPECT_EQ(f.header().metadata.at("format"), "pt");
    // original file has the same tensor set
    io::SafetensorsFile orig(model_dir(fam) + "/model.safetensors");
    EXPECT_EQ(orig.header().tensors.size(), f.header().tensors.size()) << fam;
  }
}

TEST(Safetensors, Bf16WriterRoundTrip) {
  std::map<std::string, at::Tensor> t{{"a", at::randn({3, 5})}, {"b", at::randn({7})}};
  auto d = tmpdir("bf16");
  io::save_safetensors(d + "/x.safetensors", t, at::kBFloat16);
  io::SafetensorsFile f(d + "/x.safetensors");
  EXPECT_EQ(f.info("a").dtype, io::StDType::BF16);
  EXPECT_TRUE(at::equal(f.get("a"), t["a"].to(at::kBFloat16)));
  EXPECT_TRUE(at::allclose(f.get("b", at::kFloat), t["b"], 1e-2, 1e-2));
  // header length is 8-aligned
  auto bytes = read_file(d + "/x.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(Safetensors, ShardedIndex) {
  auto m = CausalLM::from_pretrained(model_dir("llama"));
  auto d = tmpdir("sharded");
  std::map<std::string, at::Tensor> a, b;
  nlohmann::json wm;
  int i = 0;
  for (auto& [n, t] : m->named_parameters()) {
    bool first = (i++ % 2) == 0;
    (first ? a : b)[n] = t;
    wm[n] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  io::save_safetensors(d + "/model-00001-of-00002.safetensors", a, at::kFloat);
  io::save_safetensors(d + "/model-00002-of-00002.safetensors", b, at::kFloat);
  atomic_write(d + "/model.safetensors.index.json", nlohmann::json{{"weight_map", wm}}.dump());
  fs::copy(model_dir("llama") + "/config.json", d + "/config.json");
  auto m2 = CausalLM::from_pretrained(d);
  auto ids = at::arange(0, 8, at::kLong).view({1, 8});
  at::NoGradGuard ng;
  EXPECT_TRUE(at::equal(m->forward(ids, at::ones({1, 8}, at::kLong)), m2->forward(ids, at::ones({1, 8}, at::kLong))));
}

// Corrupt headers never crash: thousands of mutations must throw prefopt::Error or parse.
TEST(Safetensors, FuzzedHeadersNeverCrash) {
  auto good = read_file(model_dir("gpt2") + "/model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[i]);
  std::string head = good.substr(0, 8 + n);
  Rng rng(1234);
  int errors = 0, ok = 0;
  for (int it = 0; it < 4000; ++it) {
    std::string h = head;
    uint64_t fsize = good.size();
    switch (rng.below(6)) {
      case 0: h[rng.below(h.size())] = static_cast<char>(rng.below(256)); break;  // flip a byte
      case 1: h.resize(rng.below(h.size())); break;                                 // truncate
      case 2: for (int i = 0; i < 8; ++i) h[i] = static_cast<char>(rng.below(256)); break;  // length
      case 3: fsize = rng.below(fsize); break;                                      // file shorter
      case 4: {  // mutate a digit inside offsets/shapes
        size_t p = 8 + rng.below(n);
        for (; p < h.size() && !isdigit(static_cast<unsigned char>(h[p])); ++p) {}
        if (p < h.size()) h[p] = static_cast<char>('0' + rng.below(10));
        if (rng.below(2) && p < h.size()) h.insert(p, "9999999999");
        break;
      }
      case 5: {  // unknown dtype or invalid UTF-8
        auto p = h.find("F32");
        if (p != std::string::npos) h.replace(p, 3, rng.below(2) ? "F99" : "\xff\xfe\x80");
        break;
      }
    }
    try {
      io::parse_header(h, std::max<uint64_t>(fsize, h.size()) + 0 * fsize, "fuzz");
      ++ok;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 2000);
  // specific corruptions give specific messages
  std::string bad = head;
  for (int i = 0; i < 8; ++i) bad[i] = '\xff';
  EXPECT_NE(error_of([&] { io::parse_header(bad, good.size(), "f"); }).find("past the end"), std::string::npos);
}

TEST(Safetensors, OverlapAndRangeErrors) {
  auto mk = [](const std::string& json) {
    std::string s(8, '\0');
    uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
    return s + json;
  };
  auto h1 = mk(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})");
  EXPECT_NE(error_of([&] { io::parse_header(h1, h1.size() + 16, "f"); }).find("overlap"), std::string::npos);
  auto h2 = mk(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})");
  EXPECT_NE(error_of([&] { io::parse_header(h2, h2.size() + 4, "f"); }).find("past the data section"), std::string::npos);
  auto h3 = mk(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})");
  EXPECT_NE(error_of([&] { io::parse_header(h3, h3.size() + 8, "f"); }).find("does not match"), std::string::npos);
  auto h4 = mk(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})");
  EXPECT_NE(error_of([&] { io::parse_header(h4, h4.size() + 8, "f"); }).find("unknown dtype"), std::string::npos);
}

TEST(Checkpoint, BadCheckpointsNameTheProblem) {
  auto src = CausalLM::from_pretrained(model_dir("llama"));
  // missing tensor
  {
    auto d = tmpdir("missing");
    fs::copy(model_dir("llama") + "/config.json", d + "/config.json");
    std::map<std::string, at::Tensor> t;
    for (auto& [n, x] : src->named_parameters())
      if (n != "model.layers.1.mlp.up_proj.weight") t[n] = x;
    io::save_safetensors(d + "/model.safetensors", t, at::kFloat);
    auto e = error_of([&] { CausalLM::from_pretrained(d); });
    EXPECT_NE(e.find("missing tensor \"model.layers.1.mlp.up_proj.weight\""), std::string::npos) << e;
  }
  // mis-shaped tensor
  {
    auto d = tmpdir("shape");
    fs::copy(model_dir("llama") + "/config.json", d + "/config.json");
    std::map<std::string, at::Tensor> t;
    for (auto& [n, x] : src->named_parameters()) t[n] = x;
    t["model.norm.weight"] = at::ones({63});
    io::save_safetensors(d + "/model.safetensors", t, at::kFloat);
    auto e = error_of([&] { CausalLM::from_pretrained(d); });
    EXPECT_NE(e.find("\"model.norm.weight\" has shape [63], expected [64]"), std::string::npos) << e;
  }
  // extra tensor
  {
    auto d = tmpdir("extra");
    fs::copy(model_dir("llama") + "/config.json", d + "/config.json");
    std::map<std::string, at::Tensor> t;
    for (auto& [n, x] : src->named_parameters()) t[n] = x;
    t["model.layers.2.mlp.up_proj.weight"] = at::ones({2});
    io::save_safetensors(d + "/model.safetensors", t, at::kFloat);
    auto e = error_of([&] { CausalLM::from_pretrained(d); });
    EXPECT_NE(e.find("unexpected tensor \"model.layers.2.mlp.up_proj.weight\""), std::string::npos) << e;
  }
  // unknown model_type, malformed JSON, wrong type
  {
    auto d = tmpdir("cfg");
    auto cfg = nlohmann::json::parse(read_file(model_dir("llama") + "/config.json"));
    cfg["model_type"] = "mamba";
    atomic_write(d + "/config.json", cfg.dump());
    auto e = error_of([&] { load_config(d); });
    EXPECT_NE(e.find("unknown model_type \"mamba\""), std::string::npos) << e;
    atomic_write(d + "/config.json", "{\"model_type\": \"llama\",");
    e = error_of([&] { load_config(d); });
    EXPECT_NE(e.find("malformed JSON"), std::string::npos) << e;
    EXPECT_NE(e.find(d + "/config.json"), std::string::npos) << e;
    cfg["model_type"] = "llama";
    cfg["hidden_size"] = "64";
    atomic_write(d + "/config.json", cfg.dump());
    e = error_of([&] { load_config(d); });
    EXPECT_NE(e.find("\"hidden_size\": expected an integer"), std::string::npos) << e;
  }
}

// Prefix sharing: one packed row [prompt | chosen | rejected] with a block mask
// and positions restarting after the prompt gives the same hidden states as the
// two separate sequences.
TEST(Model, PackedBlockMaskEqualsSeparateSequences) {
  for (std::string fam : {"llama", "gemma2", "gpt2", "qwen2"}) {
    auto m = CausalLM::from_pretrained(model_dir(fam));
    at::NoGradGuard ng;
    std::vector<int64_t> P{5, 9, 13, 2}, C{7, 8, 21}, R{30, 31};
    auto run = [&](std::vector<int64_t> s) {
      auto ids = at::tensor(s, at::kLong).view({1, (int64_t)s.size()});
      auto mk = at::ones_like(ids);
      return m->forward_hidden(ids, position_ids_from_mask(mk), mk)[0];
    };
    std::vector<int64_t> pc = P, pr = P;
    pc.insert(pc.end(), C.begin(), C.end());
    pr.insert(pr.end(), R.begin(), R.end());
    auto hc = run(pc), hr = run(pr);
    std::vector<int64_t> packed = P;
    packed.insert(packed.end(), C.begin(), C.end());
    packed.insert(packed.end(), R.begin(), R.end());
    int64_t T = packed.size(), p = P.size(), c = C.size();
    auto mask = at::zeros({1, 1, T, T}, at::kBool);
    std::vector<int64_t> pos(T);
    for (int64_t i = 0; i < T; ++i) {
      bool is_r = i >= p + c;
      pos[i] = is_r ? i - c : i;
      for (int64_t j = 0; j <= i; ++j) {
        bool j_c = j >= p && j < p + c;
        bool allow = j < p || (!is_r && j_c) || (is_r && j >= p + c) || (i < p && j <= i);
        if (i >= p && !is_r && j >= p + c) allow = false;
        mask[0][0][i][j] = allow;
      }
    }
    auto hp = m->forward_hidden(at::tensor(packed, at::kLong).view({1, T}), at::tensor(pos, at::kLong).view({1, T}), mask)[0];
    EXPECT_TRUE(at::allclose(hp.narrow(0, 0, p + c), hc, 1e-5, 1e-5)) << fam;
    EXPECT_TRUE(at::allclose(hp.narrow(0, p + c, R.size()), hr.narrow(0, p, R.size()), 1e-5, 1e-5)) << fam;
  }
}

TEST(Model, FromConfigIsSeededAndHfShaped) {
  auto cfg = llama_config(100, 32, 2, 4, 2, 64, 64);
  auto a = CausalLM::from_config(cfg, 7), b = CausalLM::from_config(cfg, 7), c = CausalLM::from_config(cfg, 8);
  EXPECT_TRUE(at::equal(a->lm_head_weight(), b->lm_head_weight()));
  EXPECT_FALSE(at::equal(a->lm_head_weight(), c->lm_head_weight()));
  auto w = a->param("model.layers.0.self_attn.q_proj.weight");
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.002);
  EXPECT_EQ(a->param("model.norm.weight").sum().item<double>(), 32.0);
  EXPECT_EQ(a->num_parameters(), 100 * 32 * 2 + 2 * (32 * 32 * 2 + 32 * 16 * 2 + 3 * 32 * 64 + 64) + 32);
}
