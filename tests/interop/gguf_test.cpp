// GGUF writer/reader and `prefopt export --format gguf`, checked without llama.cpp:
// half-precision and Q8_0 against hand arithmetic, the file layout (offsets, alignment,
// padding), and exported files read back (metadata, tensor names/shapes/values, the RoPE
// row permutation, the tokenizer through prefopt's own GGUF tokenizer reader).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "common/run_cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "interop/fixtures.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace prefopt;
using namespace prefopt::io;
using prefopt::testing::make_model_dir;
using prefopt::testing::run_prefopt;

namespace {

std::string tmpdir(const std::string& name) {
  std::string d = std::string(PREFOPT_BINARY_DIR) + "/test_tmp/gguf_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

float f32_from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(Half, HandValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(65504.f), 0x7BFF);           // largest half
  EXPECT_EQ(fp32_to_fp16(65520.f), 0x7C00);           // rounds up to inf
  EXPECT_EQ(fp32_to_fp16(1.f / 3.f), 0x3555);         // 0.333251953125
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.f, -25)), 0x0000);  // a tie to even -> 0
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.f, -25)), 0x0002);  // 1.5 ulp -> 2 (tie to even)
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0); 1 + 3*2^-11 -> up.
  EXPECT_EQ(fp32_to_fp16(1.f + std::ldexp(1.f, -11)), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(1.f + 3 * std::ldexp(1.f, -11)), 0x3C02);
  EXPECT_EQ(fp32_to_fp16(f32_from_bits(0x7F800000u)), 0x7C00);  // inf
  EXPECT_EQ(fp32_to_fp16(f32_from_bits(0x7FC00000u)) & 0x7C00, 0x7C00);
  EXPECT_NE(fp32_to_fp16(f32_from_bits(0x7FC00000u)) & 0x03FF, 0);  // nan stays nan
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.f, -24));
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.f, -24));
  EXPECT_FLOAT_EQ(fp16_to_fp32(0xFBFF), -65504.f);
  for (uint32_t h = 0; h < 0x7C00; ++h) ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(uint16_t(h))), h) << h;
}

TEST(Q8_0, HandArithmetic) {
  // Block 1: max |x| = 127 -> d = 1, q = round(x) half away from zero.
  // Block 2: all zero -> d = 0, q = 0.
  // Block 3: max |x| = 0.5 -> d = 0.5/127 (f16 0x1C08 = 0.0039370059...), q = round(x * 254).
  std::vector<float> x(96, 0.f);
  x[0] = 127.f, x[1] = -127.f, x[2] = 2.5f, x[3] = -2.5f, x[4] = 0.49f, x[5] = 3.51f, x[31] = -0.5f;
  x[64] = 0.5f, x[65] = -0.25f, x[66] = 0.1f, x[67] = 1.f / 254;
  std::vector<uint8_t> q(3 * kQ8BlockBytes, 0xAA);
  quantize_q8_0(x.data(), 96, q.data());
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(q[1], 0x3C);  // d = 1.0
  EXPECT_EQ(int8_t(q[2]), 127);
  EXPECT_EQ(int8_t(q[3]), -127);
  EXPECT_EQ(int8_t(q[4]), 3);   // 2.5 -> 3 (away from zero)
  EXPECT_EQ(int8_t(q[5]), -3);
  EXPECT_EQ(int8_t(q[6]), 0);
  EXPECT_EQ(int8_t(q[7]), 4);
  EXPECT_EQ(int8_t(q[2 + 31]), -1);  // -0.5 -> -1
  for (int j = 8; j < 33; ++j) EXPECT_EQ(q[j], 0) << j;
  for (int j = 34; j < 68; ++j) EXPECT_EQ(q[j], 0) << "zero block byte " << j;
  uint16_t d3;
  std::memcpy(&d3, &q[68], 2);
  EXPECT_EQ(d3, fp32_to_fp16(0.5f / 127.f));
  EXPECT_EQ(int8_t(q[70]), 127);
  EXPECT_EQ(int8_t(q[71]), -64);  // -0.25 * 254 = -63.5 -> -64
  EXPECT_EQ(int8_t(q[72]), 25);   // 0.1 * 254 = 25.4
  EXPECT_EQ(int8_t(q[73]), 1);
  std::vector<float> y(96);
  dequantize_q8_0(q.data(), 96, y.data());
  EXPECT_FLOAT_EQ(y[2], 3.f);
  EXPECT_FLOAT_EQ(y[64], 127 * fp16_to_fp32(d3));
  // Random data: |x - dequant(x)| <= d/2 (plus the f16 rounding of d) per block.
  at::manual_seed(7);
  at::Tensor r = at::randn({32 * 50});
  std::vector<uint8_t> qr(50 * kQ8BlockBytes);
  quantize_q8_0(r.data_ptr<float>(), r.numel(), qr.data());
  std::vector<float> back(r.numel());
  dequantize_q8_0(qr.data(), r.numel(), back.data());
  for (int b = 0; b < 50; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(r.data_ptr<float>()[b * 32 + j]));
    for (int j = 0; j < 32; ++j)
      ASSERT_LE(std::fabs(r.data_ptr<float>()[b * 32 + j] - back[b * 32 + j]), amax / 127 * 0.5 + amax * 1e-3) << b;
  }
}

TEST(GgufFile, LayoutAndRoundTrip) {
  const std::string d = tmpdir("layout"), p = d + "/t.gguf";
  GgufWriter w(32);
  w.add_string("general.architecture", "llama");
  w.add_u32("x.u32", 7);
  w.add_i32("x.i32", -3);
  w.add_f32("x.f32", 0.25f);
  w.add_bool("x.bool", true);
  w.add_string_array("x.strs", {"a", "", "\xE2\x96\x81the"});
  w.add_i32_array("x.ints", {1, -2, 3});
  w.add_f32_array("x.floats", {0.5f, -1.f});
  std::vector<float> a = {1, 2, 3};  // 12 bytes: the next tensor starts at 32
  w.add_tensor("a", {3}, GgmlType::F32, [&] { return std::string(reinterpret_cast<const char*>(a.data()), 12); });
  std::vector<float> m(64 * 2);
  for (size_t i = 0; i < m.size(); ++i) m[i] = float(i) - 60.f;
  w.add_tensor("m", {64, 2}, GgmlType::Q8_0, [&] {
    std::string s(2 * 2 * kQ8BlockBytes, '\0');
    quantize_q8_0(m.data(), 128, reinterpret_cast<uint8_t*>(s.data()));
    return s;
  });
  w.add_tensor("h", {2, 3}, GgmlType::F16, [] {
    std::string s;
    for (int i = 0; i < 6; ++i) {
      uint16_t h = fp32_to_fp16(float(i) / 4);
      s.append(reinterpret_cast<const char*>(&h), 2);
    }
    return s;
  });
  w.write(p);
  GgufFile g = read_gguf(p);
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.kv["general.alignment"], 32);
  EXPECT_EQ(g.kv_type["general.alignment"], uint32_t(GgufValue::U32));
  EXPECT_EQ(g.key_order.front(), "general.alignment");
  EXPECT_EQ(g.kv["x.u32"], 7);
  EXPECT_EQ(g.kv_type["x.i32"], uint32_t(GgufValue::I32));
  EXPECT_EQ(g.kv["x.i32"], -3);
  EXPECT_EQ(g.kv["x.f32"], 0.25);
  EXPECT_EQ(g.kv["x.bool"], true);
  EXPECT_EQ(g.kv["x.strs"], nlohmann::json({"a", "", "\xE2\x96\x81the"}));
  EXPECT_EQ(g.kv["x.ints"], nlohmann::json({1, -2, 3}));
  EXPECT_EQ(g.kv["x.floats"], nlohmann::json({0.5, -1.0}));
  ASSERT_EQ(g.tensors.size(), 3u);
  EXPECT_EQ(g.data_start % 32, 0u);
  EXPECT_EQ(g.tensors[0].offset, 0u);
  EXPECT_EQ(g.tensors[1].offset, 32u);   // 12 bytes padded to 32
  EXPECT_EQ(g.tensors[1].bytes, 136u);   // 2 rows x 2 blocks x 34
  EXPECT_EQ(g.tensors[2].offset, 192u);  // 32 + 136 = 168 -> 192
  EXPECT_EQ(g.tensors[2].ne, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g.bytes.size(), g.data_start + 192 + 32);  // 12 bytes of f16 padded to 32
  EXPECT_EQ(g.tensor_f32(g.tensors[0]), a);
  auto h = g.tensor_f32(g.tensors[2]);
  EXPECT_EQ(h, (std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1.f, 1.25f}));
  auto mq = g.tensor_f32(g.tensors[1]);
  for (size_t i = 0; i < m.size(); ++i) EXPECT_NEAR(mq[i], m[i], 60.f / 127 * 0.5 + 0.05) << i;
  // The header bytes by hand: magic, version 3, 3 tensors, 9 keys.
  EXPECT_EQ(g.bytes.substr(0, 4), "GGUF");
  uint32_t ver;
  uint64_t nt, nkv;
  std::memcpy(&ver, g.bytes.data() + 4, 4);
  std::memcpy(&nt, g.bytes.data() + 8, 8);
  std::memcpy(&nkv, g.bytes.data() + 16, 8);
  EXPECT_EQ(ver, 3u);
  EXPECT_EQ(nt, 3u);
  EXPECT_EQ(nkv, 9u);
  // Negative controls: a truncated file and a bad magic are errors, not crashes.
  atomic_write(d + "/cut.gguf", g.bytes.substr(0, g.bytes.size() - 40));
  EXPECT_THROW(read_gguf(d + "/cut.gguf"), Error);
  atomic_write(d + "/cut2.gguf", g.bytes.substr(0, 100));
  EXPECT_THROW(read_gguf(d + "/cut2.gguf"), Error);
  atomic_write(d + "/bad.gguf", "GGUX" + g.bytes.substr(4));
  EXPECT_THROW(read_gguf(d + "/bad.gguf"), Error);
}

struct Exported {
  std::string dir, gguf;
  GgufFile g;
  std::map<std::string, at::Tensor> hf;
  ModelConfig cfg;
};

Exported export_model(const std::string& name, const std::string& dtype) {
  Exported e;
  const std::string d = tmpdir(name + "_" + dtype);
  e.dir = d + "/model";
  make_model_dir(name, e.dir);
  e.gguf = d + "/m.gguf";
  int rc = -1;
  std::string out = run_prefopt("export --format gguf --model " + e.dir + " --output " + e.gguf + " --dtype " + dtype,
                                &rc, true);
  EXPECT_EQ(rc, 0) << out;
  e.g = read_gguf(e.gguf);
  e.hf = load_safetensors_dir(e.dir, at::kFloat);
  e.cfg = load_config(e.dir);
  return e;
}

at::Tensor gguf_tensor(const GgufFile& g, const std::string& name) {
  const GgufTensorInfo* t = g.find(name);
  if (!t) {
    ADD_FAILURE() << "no tensor " << name;
    return at::Tensor();
  }
  auto v = g.tensor_f32(*t);
  std::vector<int64_t> shape(t->ne.rbegin(), t->ne.rend());
  return at::from_blob(v.data(), shape, at::kFloat).clone();
}

void check_metadata(const Exported& e, const std::string& arch) {
  const auto& kv = e.g.kv;
  const ModelConfig& c = e.cfg;
  EXPECT_EQ(kv.at("general.architecture"), arch);
  EXPECT_EQ(kv.at("general.name"), "model");
  EXPECT_EQ(kv.at("general.alignment"), 32);
  EXPECT_EQ(kv.at(arch + ".context_length"), c.max_position_embeddings);
  EXPECT_EQ(kv.at(arch + ".embedding_length"), c.hidden_size);
  EXPECT_EQ(kv.at(arch + ".block_count"), c.num_hidden_layers);
  EXPECT_EQ(kv.at(arch + ".feed_forward_length"), c.intermediate_size);
  EXPECT_EQ(kv.at(arch + ".attention.head_count"), c.num_attention_heads);
  EXPECT_EQ(kv.at(arch + ".attention.head_count_kv"), c.num_key_value_heads);
  EXPECT_FLOAT_EQ(kv.at(arch + ".rope.freq_base").get<float>(), float(c.rope_theta));
  EXPECT_FLOAT_EQ(kv.at(arch + ".attention.layer_norm_rms_epsilon").get<float>(), float(c.rms_norm_eps));
  EXPECT_EQ(e.g.kv_type.at(arch + ".rope.freq_base"), uint32_t(GgufValue::F32));
  EXPECT_EQ(e.g.kv_type.at(arch + ".block_count"), uint32_t(GgufValue::U32));
  EXPECT_EQ(kv.at("tokenizer.ggml.tokens").size(), size_t(c.vocab_size));
  EXPECT_EQ(kv.at("tokenizer.ggml.token_type").size(), size_t(c.vocab_size));
  EXPECT_EQ(e.g.data_start % 32, 0u);
  for (const auto& t : e.g.tensors) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  // Tensors do not overlap and follow each other in order.
  for (size_t i = 1; i < e.g.tensors.size(); ++i)
    EXPECT_GE(e.g.tensors[i].offset, e.g.tensors[i - 1].offset + e.g.tensors[i - 1].bytes);
}

// The tokenizer read back from the .gguf (prefopt's GGUF tokenizer reader) encodes as the original.
void check_tokenizer_round_trip(const Exported& e) {
  Tokenizer a = Tokenizer::load(e.dir), b = Tokenizer::load(e.gguf);
  for (int32_t i = 0; i < a.vocab_size(); ++i) ASSERT_EQ(a.id_to_token(i), b.id_to_token(i)) << i;
  if (a.bos_id()) {  // else config.json's (the byte-level Mistral case)
    EXPECT_EQ(a.bos_id(), b.bos_id());
  }
  if (a.eos_id()) {
    EXPECT_EQ(a.eos_id(), b.eos_id());
  }
  for (const std::string& s : prefopt::testing::gsm8k_questions(60)) {
    ASSERT_EQ(a.encode(s), b.encode(s)) << s;
    ASSERT_EQ(a.encode(s, true), b.encode(s, true)) << s;
  }
}

TEST(Export, LlamaF32) {
  Exported e = export_model("llama", "f32");
  check_metadata(e, "llama");
  const ModelConfig& c = e.cfg;
  EXPECT_EQ(e.g.kv["general.file_type"], 0);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.model"], "llama");
  EXPECT_FALSE(e.g.kv.contains("tokenizer.ggml.pre"));
  EXPECT_FALSE(e.g.kv.contains("tokenizer.ggml.merges"));
  EXPECT_EQ(e.g.kv["tokenizer.ggml.add_bos_token"], true);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.add_space_prefix"], true);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.bos_token_id"], 1);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.eos_token_id"], 2);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.unknown_token_id"], 0);
  const auto& types = e.g.kv["tokenizer.ggml.token_type"];
  EXPECT_EQ(types[0], 2);    // <unk>
  EXPECT_EQ(types[1], 3);    // <s> control
  EXPECT_EQ(types[3], 6);    // <0x00> byte
  EXPECT_EQ(types[258], 6);  // <0xFF>
  EXPECT_EQ(types[259], 1);  // ▁
  const auto& scores = e.g.kv["tokenizer.ggml.scores"];
  EXPECT_FLOAT_EQ(scores[286].get<float>(), 0.f);    // ▁a: the first merge
  EXPECT_FLOAT_EQ(scores[319].get<float>(), -33.f);  // ▁an: the last
  // 2 layers x 9 tensors + token_embd + output_norm + output (untied).
  EXPECT_EQ(e.g.tensors.size(), 21u);
  EXPECT_EQ(e.g.find("token_embd.weight")->ne, (std::vector<int64_t>{c.hidden_size, c.vocab_size}));
  EXPECT_EQ(e.g.find("blk.1.attn_k.weight")->ne, (std::vector<int64_t>{c.hidden_size, c.num_key_value_heads * c.head_dim}));
  EXPECT_EQ(e.g.find("blk.0.ffn_down.weight")->ne, (std::vector<int64_t>{c.intermediate_size, c.hidden_size}));
  EXPECT_TRUE(at::equal(gguf_tensor(e.g, "output.weight"), e.hf["lm_head.weight"]));
  EXPECT_TRUE(at::equal(gguf_tensor(e.g, "blk.1.ffn_gate.weight"), e.hf["model.layers.1.mlp.gate_proj.weight"]));
  EXPECT_TRUE(at::equal(gguf_tensor(e.g, "blk.0.attn_v.weight"), e.hf["model.layers.0.self_attn.v_proj.weight"]));
  // The RoPE permutation by hand: within head h, GGUF row 2i is HF row i and GGUF row
  // 2i+1 is HF row i + D/2.
  const int64_t D = c.head_dim;
  const std::vector<std::tuple<std::string, std::string, int64_t>> qk = {
      {"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", c.num_attention_heads},
      {"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", c.num_key_value_heads}};
  for (const auto& [g, hf, heads] : qk) {
    at::Tensor G = gguf_tensor(e.g, g), H = e.hf[hf];
    ASSERT_EQ(G.sizes(), H.sizes());
    EXPECT_FALSE(at::equal(G, H));
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        ASSERT_TRUE(at::equal(G[h * D + 2 * i], H[h * D + i])) << g << " head " << h << " i " << i;
        ASSERT_TRUE(at::equal(G[h * D + 2 * i + 1], H[h * D + i + D / 2])) << g << " head " << h << " i " << i;
      }
  }
  check_tokenizer_round_trip(e);
}

TEST(Export, Qwen2F16TiedBiasesNoPermutation) {
  Exported e = export_model("qwen2", "f16");
  check_metadata(e, "qwen2");
  EXPECT_EQ(e.g.kv["general.file_type"], 1);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.model"], "gpt2");
  EXPECT_EQ(e.g.kv["tokenizer.ggml.pre"], "qwen2");
  EXPECT_EQ(e.g.kv["tokenizer.ggml.add_bos_token"], false);
  EXPECT_EQ(e.g.kv["tokenizer.chat_template"], prefopt::testing::kChatTemplate);
  Tokenizer tok = Tokenizer::load(e.dir);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.eos_token_id"], *tok.eos_id());
  EXPECT_EQ(e.g.kv["tokenizer.ggml.merges"].size(), 384u - 256 - 3);
  const auto& types = e.g.kv["tokenizer.ggml.token_type"];
  EXPECT_EQ(types[381], 3);  // <|endoftext|>
  EXPECT_EQ(types[383], 3);  // <|im_end|>
  EXPECT_EQ(types[100], 1);
  // Tied: no output.weight. 2 layers x 12 (q/k/v biases) + token_embd + output_norm.
  EXPECT_EQ(e.g.find("output.weight"), nullptr);
  EXPECT_EQ(e.g.tensors.size(), 26u);
  for (const auto& t : e.g.tensors) EXPECT_EQ(t.type, t.ne.size() == 1 ? 0u : 1u) << t.name;  // 1-D f32, else f16
  // No permutation for qwen2 (NeoX RoPE): values equal up to f16 rounding.
  at::Tensor q = gguf_tensor(e.g, "blk.0.attn_q.weight"), hq = e.hf["model.layers.0.self_attn.q_proj.weight"];
  EXPECT_TRUE(at::equal(q, hq.to(at::kHalf).to(at::kFloat)));
  EXPECT_TRUE(at::equal(gguf_tensor(e.g, "blk.1.attn_k.bias"), e.hf["model.layers.1.self_attn.k_proj.bias"]));
  check_tokenizer_round_trip(e);
}

TEST(Export, MistralQ8) {
  Exported e = export_model("mistral", "q8_0");
  check_metadata(e, "llama");
  EXPECT_EQ(e.g.kv["general.file_type"], 7);
  EXPECT_EQ(e.g.kv["tokenizer.ggml.pre"], "gpt-2");
  EXPECT_EQ(e.g.kv["tokenizer.ggml.merges"].size(), 0u);
  for (const auto& t : e.g.tensors) EXPECT_EQ(t.type, t.ne.size() == 1 ? 0u : 8u) << t.name;
  // Q8_0 within half a quantisation step of the HF weights (per 32-value block).
  at::Tensor g = gguf_tensor(e.g, "blk.0.ffn_up.weight"), h = e.hf["model.layers.0.mlp.up_proj.weight"];
  at::Tensor blocks = h.reshape({-1, 32}), err = (g.reshape({-1, 32}) - blocks).abs();
  at::Tensor step = std::get<0>(blocks.abs().max(1, true)) / 127;
  // Half a step, plus the f16 rounding of the scale (relative 2^-11) times |q| <= 127.
  EXPECT_TRUE((err <= step * (0.5 + 127.0 / 2048) + 1e-7).all().item<bool>());
  EXPECT_GT(err.max().item<float>(), 0.f);  // it was quantised
  check_tokenizer_round_trip(e);
}

TEST(Export, BadInput) {
  const std::string d = tmpdir("bad");
  int rc = -1;
  // Gemma has no GGUF export here: exit 2 naming the config and the model_type.
  fs::create_directories(d + "/gemma");
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(prefopt::testing::shared_model("gemma") + "/" + f, d + "/gemma/" + f);
  std::string out = run_prefopt("export --format gguf --model " + d + "/gemma --output " + d + "/g.gguf", &rc, true);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("gemma"), std::string::npos) << out;
  EXPECT_NE(out.find("HINT"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(d + "/g.gguf"));
  // No tokenizer next to the weights.
  out = run_prefopt("export --format gguf --model " + prefopt::testing::shared_model("llama") + " --output " + d +
                        "/l.gguf",
                    &rc, true);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--tokenizer"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(d + "/l.gguf"));
  // A tokenizer larger than the model's vocabulary.
  make_model_dir("mistral", d + "/m");
  make_model_dir("qwen2", d + "/q");
  out = run_prefopt("export --format gguf --model " + d + "/m --tokenizer " + d + "/q --output " + d + "/m.gguf", &rc,
                    true);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("vocab_size is 256"), std::string::npos) << out;
  // An unknown dtype is a usage error.
  out = run_prefopt("export --format gguf --model " + d + "/m --output " + d + "/m.gguf --dtype q4_0", &rc, true);
  EXPECT_NE(rc, 0);
  EXPECT_FALSE(fs::exists(d + "/m.gguf"));
}

}  // namespace
