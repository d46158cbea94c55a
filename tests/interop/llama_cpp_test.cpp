// llama.cpp runs what `prefopt export --format gguf` writes: node-llama-cpp 3.21.1 (a
// prebuilt llama.cpp) loads the GGUF, tokenizes texts and greedy-decodes prompts; the ids
// must equal `prefopt tokenize` and `prefopt generate` (f32: identical; f16 / q8_0: equal
// up to a first divergence, where the two chosen tokens must be near-ties under prefopt's
// f32 model). A negative control undoes the Q/K row permutation in a Llama file and
// expects llama.cpp's output to change.
//
// node-llama-cpp is looked for in $PREFOPT_NODE_DIR or <build>/interop_node (scripts/setup.sh
// installs it there); when absent the test runs `npm install` there once, and is skipped
// with a message when that fails (no network).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/run_cli.h"
#include "core/fs.h"
#include "interop/fixtures.h"
#include "io/gguf.h"
#include "model/model.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace prefopt;
using prefopt::testing::make_model_dir;
using prefopt::testing::popen_read;
using prefopt::testing::run_prefopt;

namespace {

std::string node_dir() {
  const char* e = std::getenv("PREFOPT_NODE_DIR");
  return e && *e ? e : std::string(PREFOPT_BINARY_DIR) + "/interop_node";
}

bool have_package(const std::string& dir) {
  return fs::exists(dir + "/node_modules/node-llama-cpp/dist/index.js") &&
         fs::exists(dir + "/node_modules/@node-llama-cpp/linux-x64/package.json");
}

// "" when node-llama-cpp is usable, else why not.
std::string ensure_node_llama_cpp() {
  static std::string why = [] {
    int rc = -1;
    popen_read("node --version >/dev/null 2>&1", &rc);
    if (rc != 0) return std::string("node is not installed");
    const std::string d = node_dir();
    if (have_package(d)) return std::string();
    fs::create_directories(d);
    if (!fs::exists(d + "/package.json")) atomic_write(d + "/package.json", "{\"name\":\"prefopt-interop\",\"private\":true}\n");
    const std::string cmd = "cd '" + d +
                            "' && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true timeout 600 npm install --no-save --no-audit --no-fund "
                            "--omit=optional --fetch-retries=4 node-llama-cpp@3.21.1 @node-llama-cpp/linux-x64@3.21.1 2>&1";
    std::string out = popen_read(cmd, &rc);
    if (rc != 0 || !have_package(d))
      return "npm install node-llama-cpp@3.21.1 failed in " + d + " (rc " + std::to_string(rc) + "): " +
             out.substr(out.size() > 600 ? out.size() - 600 : 0);
    return std::string();
  }();
  return why;
}

std::string tmpdir(const std::string& name) {
  std::string d = std::string(PREFOPT_BINARY_DIR) + "/test_tmp/llama_cpp_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = {
      "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
      "the answer is 1234567 + 89 = ?\n\nthen there were ten",
      "  leading spaces,\ttabs and  double  spaces ",
      "h\xC3\xA9llo w\xC3\xB6rld \xE2\x80\x94 caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC",
      "an interesting sentence: there is the one",
  };
  return t;
}

json read_jsonl(const std::string& text) {
  json rows = json::array();
  size_t p = 0;
  while (p < text.size()) {
    size_t e = text.find('\n', p);
    if (e == std::string::npos) e = text.size();
    if (e > p) rows.push_back(json::parse(text.substr(p, e - p)));
    p = e + 1;
  }
  return rows;
}

std::vector<std::vector<int64_t>> ids_of(const json& rows, const char* key) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& r : rows) out.push_back(r[key].get<std::vector<int64_t>>());
  return out;
}

struct LlamaRun {
  std::vector<std::vector<int64_t>> tokenize, generate;
};

LlamaRun run_llama_cpp(const std::string& gguf, const std::vector<std::vector<int64_t>>& prompts, int max_new,
                  const std::vector<int64_t>& stop, const std::string& work) {
  json job = {{"node_dir", node_dir()}, {"model", gguf},       {"texts", texts()},     {"prompts", prompts},
              {"max_new_tokens", max_new}, {"stop", stop}, {"context_size", 128}};
  atomic_write(work + "/job.json", job.dump());
  int rc = -1;
  std::string out = popen_read("node " + std::string(PREFOPT_SOURCE_DIR) + "/tests/interop/llama_cpp_check.mjs " +
                                   work + "/job.json 2>" + work + "/node.err",
                               &rc);
  EXPECT_EQ(rc, 0) << out << read_file(work + "/node.err");
  LlamaRun r;
  if (rc != 0) return r;
  json rows = read_jsonl(out);  // one line
  EXPECT_EQ(rows.size(), 1u) << out;
  if (rows.empty()) return r;
  const json& j = rows.back();
  r.tokenize = j["tokenize"].get<std::vector<std::vector<int64_t>>>();
  r.generate = j["generate"].get<std::vector<std::vector<int64_t>>>();
  return r;
}

struct Case {
  std::string dir, work;
  std::vector<std::vector<int64_t>> tok_ids, prompts, prefopt_gen;
  std::vector<int64_t> stop;
};

constexpr int kNew = 24;

// variant "llama3_rope": the Llama with Llama-3 rope scaling (exported as rope_freqs.weight);
// original_max_position_embeddings 64 puts the head's frequencies in all three regimes.
Case prepare(const std::string& name, const std::string& variant = "") {
  Case c;
  c.work = tmpdir(name + variant);
  c.dir = c.work + "/model";
  make_model_dir(name, c.dir);
  if (variant == "llama3_rope") {
    json cfg = json::parse(read_file(c.dir + "/config.json"));
    cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
    atomic_write(c.dir + "/config.json", cfg.dump(2));
  }
  std::string rows;
  for (const auto& t : texts()) rows += json{{"text", t}}.dump() + "\n";
  atomic_write(c.work + "/texts.jsonl", rows);
  int rc = -1;
  c.tok_ids = ids_of(read_jsonl(run_prefopt("tokenize --tokenizer " + c.dir + " --input " + c.work + "/texts.jsonl", &rc)),
                     "input_ids");
  EXPECT_EQ(rc, 0);
  // Prompts as HF builds them (BOS where the tokenizer's post-processor adds one).
  c.prompts = ids_of(read_jsonl(run_prefopt("tokenize --add-special-tokens --tokenizer " + c.dir + " --input " + c.work +
                                            "/texts.jsonl",
                                            &rc)),
                     "input_ids");
  EXPECT_EQ(rc, 0);
  std::string prow;
  for (const auto& p : c.prompts) prow += json{{"input_ids", p}}.dump() + "\n";
  atomic_write(c.work + "/prompts.jsonl", prow);
  c.prefopt_gen = ids_of(read_jsonl(run_prefopt("generate --model " + c.dir + " --input " + c.work +
                                                "/prompts.jsonl --max-new-tokens " + std::to_string(kNew),
                                                &rc)),
                         "output_ids");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(c.prefopt_gen.size(), texts().size());
  c.stop = load_config(c.dir).eos_token_ids;
  return c;
}

std::string export_gguf(const Case& c, const std::string& dtype) {
  const std::string out = c.work + "/m_" + dtype + ".gguf";
  int rc = -1;
  std::string log = run_prefopt("export --format gguf --model " + c.dir + " --output " + out + " --dtype " + dtype, &rc, true);
  EXPECT_EQ(rc, 0) << log;
  return out;
}

// f16 / q8_0: the greedy ids agree until a first divergence at which the two chosen tokens
// are within `tol` nats of each other under prefopt's f32 model.
void expect_near_greedy(const CausalLM& m, const std::vector<int64_t>& prompt, const std::vector<int64_t>& ours,
                        const std::vector<int64_t>& theirs, double tol, const std::string& what) {
  size_t t = 0;
  while (t < ours.size() && t < theirs.size() && ours[t] == theirs[t]) ++t;
  if (t == ours.size() || t == theirs.size()) {
    EXPECT_TRUE(ours.size() == theirs.size() || (t > 0 && t == std::min(ours.size(), theirs.size()))) << what;
    return;
  }
  std::vector<int64_t> a = prompt, b = prompt;
  a.insert(a.end(), ours.begin(), ours.begin() + t + 1);
  b.insert(b.end(), theirs.begin(), theirs.begin() + t + 1);
  auto lp = token_logprobs(m, {a, b});
  const double la = lp[0].back(), lb = lp[1].back();
  EXPECT_LE(la - lb, tol) << what << ": first divergence at new token " << t << " (prefopt " << ours[t]
                          << ", llama.cpp " << theirs[t] << ", log-prob gap " << la - lb << ")";
}

void check_model(const std::string& name, const std::string& variant = "") {
  const std::string why = ensure_node_llama_cpp();
  if (!why.empty()) GTEST_SKIP() << "llama.cpp interop skipped: " << why;
  Case c = prepare(name, variant);
  auto m = CausalLM::from_pretrained(c.dir);
  for (const std::string dtype : {"f32", "f16", "q8_0"}) {
    const std::string gguf = export_gguf(c, dtype);
    LlamaRun r = run_llama_cpp(gguf, c.prompts, kNew, c.stop, c.work);
    ASSERT_EQ(r.tokenize.size(), texts().size()) << name << " " << dtype;
    ASSERT_EQ(r.generate.size(), texts().size()) << name << " " << dtype;
    for (size_t i = 0; i < texts().size(); ++i) {
      EXPECT_EQ(r.tokenize[i], c.tok_ids[i]) << name << " " << dtype << ": tokenize " << json(texts()[i]).dump();
      const std::string what = name + " " + dtype + " prompt " + std::to_string(i);
      ASSERT_FALSE(c.prefopt_gen[i].empty()) << what;
      if (dtype == "f32") {
        EXPECT_EQ(r.generate[i], c.prefopt_gen[i]) << what;
      } else {
        expect_near_greedy(*m, c.prompts[i], c.prefopt_gen[i], r.generate[i], dtype == "f16" ? 0.05 : 0.25, what);
      }
    }
  }
}

TEST(LlamaCpp, LlamaSentencePieceVocab) { check_model("llama"); }
TEST(LlamaCpp, MistralByteLevelGpt2) { check_model("mistral"); }
TEST(LlamaCpp, Qwen2ByteLevelQwen2TiedBiases) { check_model("qwen2"); }
TEST(LlamaCpp, LlamaWithLlama3RopeScaling) { check_model("llama", "llama3_rope"); }

// Negative control: undo the RoPE row permutation of every attn_q / attn_k in an f32 Llama
// file; llama.cpp must then disagree with prefopt (so the comparison above can fail).
TEST(LlamaCpp, WithoutPermutationOutputsDiffer) {
  const std::string why = ensure_node_llama_cpp();
  if (!why.empty()) GTEST_SKIP() << "llama.cpp interop skipped: " << why;
  Case c = prepare("llama");
  const std::string gguf = export_gguf(c, "f32");
  io::GgufFile g = io::read_gguf(gguf);
  std::string bytes = g.bytes;
  int n = 0;
  for (const auto& t : g.tensors) {
    const bool q = t.name.find(".attn_q.weight") != std::string::npos, k = t.name.find(".attn_k.weight") != std::string::npos;
    if (!q && !k) continue;
    const int64_t heads = q ? g.kv["llama.attention.head_count"].get<int64_t>() : g.kv["llama.attention.head_count_kv"].get<int64_t>();
    auto v = g.tensor_f32(t);
    at::Tensor w = at::from_blob(v.data(), {t.ne[1], t.ne[0]}, at::kFloat);
    // interleaved -> rotate-half: [heads, D/2, 2, in] -> [heads, 2, D/2, in]
    at::Tensor u = w.reshape({heads, t.ne[1] / heads / 2, 2, t.ne[0]}).transpose(1, 2).contiguous();
    std::memcpy(&bytes[g.data_start + t.offset], u.data_ptr<float>(), size_t(u.numel()) * 4);
    ++n;
  }
  ASSERT_EQ(n, 4);
  atomic_write(c.work + "/unpermuted.gguf", bytes);
  LlamaRun r = run_llama_cpp(c.work + "/unpermuted.gguf", c.prompts, kNew, c.stop, c.work);
  ASSERT_EQ(r.generate.size(), texts().size());
  size_t differ = 0;
  for (size_t i = 0; i < texts().size(); ++i) differ += r.generate[i] != c.prefopt_gen[i];
  EXPECT_GE(differ, texts().size() - 1) << "llama.cpp agreed with prefopt without the Q/K permutation";
  for (size_t i = 0; i < texts().size(); ++i) EXPECT_EQ(r.tokenize[i], c.tok_ids[i]);  // the tokenizer is untouched
}

}  // namespace
