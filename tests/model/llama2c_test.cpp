// llama2.c import: the converted HF Llama must reproduce an independent
// implementation of llama2.c's run.c forward (interleaved RoPE from the file's
// own freq_cis tables, un-permuted weights) on the real stories260K.bin.
// Shapes: T time, C dim, F hidden_dim, V vocab, D head size.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "model/llama2c.h"

using namespace prefopt;

namespace {

const std::string kBin = std::string(PREFOPT_SHARED_DATA) + "/models/llama2c/stories260K.bin";

// run.c's transformer forward over a whole sequence, logits [T,V].
struct RunC {
  int64_t C, F, L, Hq, Hkv, V, seq, D;
  at::Tensor emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, fcr, fci;
  explicit RunC(const std::string& path) {
    std::string b = read_file(path);
    int32_t h[7];
    std::memcpy(h, b.data(), 28);
    C = h[0], F = h[1], L = h[2], Hq = h[3], Hkv = h[4], V = h[5], seq = h[6], D = C / Hq;
    const float* p = reinterpret_cast<const float*>(b.data() + 28);
    auto take = [&](std::vector<int64_t> s) {
      auto t = at::from_blob(const_cast<float*>(p), s, at::kFloat).clone();
      p += t.numel();
      return t;
    };
    emb = take({V, C}), rms_att = take({L, C}), wq = take({L, C, C}), wk = take({L, Hkv * D, C});
    wv = take({L, Hkv * D, C}), wo = take({L, C, C}), rms_ffn = take({L, C}), w1 = take({L, F, C});
    w2 = take({L, C, F}), w3 = take({L, F, C}), rms_final = take({C});
    fcr = take({seq, D / 2}), fci = take({seq, D / 2});
  }
  static at::Tensor rms(const at::Tensor& x, const at::Tensor& w) {
    return x * at::rsqrt(x.pow(2).mean(-1, true) + 1e-5) * w;
  }
  // x [T,H,D]: rotate interleaved pairs with the stored tables.
  at::Tensor rope(const at::Tensor& x) const {
    int64_t T = x.size(0);
    auto pr = x.view({T, x.size(1), D / 2, 2});
    auto a = pr.select(3, 0), b = pr.select(3, 1);
    auto c = fcr.narrow(0, 0, T).unsqueeze(1), s = fci.narrow(0, 0, T).unsqueeze(1);
    return at::stack({a * c - b * s, a * s + b * c}, 3).view_as(x);
  }
  at::Tensor logits(const std::vector<int64_t>& ids) const {
    int64_t T = ids.size();
    auto x = emb.index_select(0, at::tensor(ids, at::kLong));
    auto causal = at::ones({T, T}, at::kBool).tril();
    for (int64_t l = 0; l < L; ++l) {
      auto xb = rms(x, rms_att[l]);
      auto q = rope(at::matmul(xb, wq[l].t()).view({T, Hq, D}));
      auto k = rope(at::matmul(xb, wk[l].t()).view({T, Hkv, D}));
      auto v = at::matmul(xb, wv[l].t()).view({T, Hkv, D});
      std::vector<at::Tensor> heads;
      for (int64_t h = 0; h < Hq; ++h) {
        int64_t g = h / (Hq / Hkv);
        auto s = at::matmul(q.select(1, h), k.select(1, g).t()) / std::sqrt(static_cast<double>(D));
        s = s.masked_fill(causal.logical_not(), -INFINITY).softmax(-1);
        heads.push_back(at::matmul(s, v.select(1, g)));
      }
      x = x + at::matmul(at::cat(heads, 1), wo[l].t());
      xb = rms(x, rms_ffn[l]);
      x = x + at::matmul(at::silu(at::matmul(xb, w1[l].t())) * at::matmul(xb, w3[l].t()), w2[l].t());
    }
    return at::matmul(rms(x, rms_final), emb.t());
  }
};

}  // namespace

TEST(Llama2c, ConvertedModelMatchesRunC) {
  RunC ref(kBin);
  auto m = load_llama2c(kBin);
  EXPECT_EQ(m->config().vocab_size, 512);
  EXPECT_EQ(m->config().num_key_value_heads, 4);
  EXPECT_TRUE(m->config().tie_word_embeddings);
  EXPECT_EQ(m->num_parameters(), 32768 + 5 * (128 + 4096 + 2 * 2048 + 4096 + 3 * 172 * 64) + 64);

  // run.c's greedy sample from BOS, no cache: the reference token stream.
  std::vector<int64_t> seq = {1};
  for (int i = 0; i < 40; ++i) seq.push_back(ref.logits(seq)[-1].argmax().item<int64_t>());
  auto want = ref.logits(seq);
  auto ids = at::tensor(seq, at::kLong).unsqueeze(0);
  auto got = m->forward(ids, at::ones_like(ids))[0];
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-4);

  // prefopt's cached greedy decoding gives run.c's tokens.
  auto gen = greedy_generate(*m, {{1}}, 40, {});
  std::vector<int64_t> tail(seq.begin() + 1, seq.end());
  EXPECT_EQ(gen[0], tail);
  // The trained weights make the greedy stream confident (a wrong q/k permutation
  // scores it at mean log p ~ -5.8, near log(1/V)).
  auto lp = token_logprobs(*m, {seq})[0];
  double mean = 0;
  for (float x : lp) mean += x;
  mean /= lp.size();
  EXPECT_GT(mean, -1.0);
}

TEST(Llama2c, TruncatedFileIsAnError) {
  std::string b = read_file(kBin);
  std::string path = std::string(PREFOPT_BINARY_DIR) + "/llama2c_truncated.bin";
  atomic_write(path, b.substr(0, b.size() - 4));
  try {
    load_llama2c(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llama2c_truncated.bin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected 1056540 bytes"), std::string::npos) << e.what();
  }
}
