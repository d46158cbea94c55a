// The trainer in-process: packing equivalence, accumulation invariant, every
// parameter moves, DPO overfits, reference strategies, Triple-PO and
// multi-turn masks by hand, data validation, config, NaN guard.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "loss/logps.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/batch.h"
#include "train/config.h"
#include "train/trainer.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

const std::string kData = PREFOPT_SHARED_DATA;
const std::string kLlama = kData + "/models/llama";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_train_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// lo..hi-1 random token ids below 320 (the shared tiny Llama's vocabulary).
std::vector<int> random_ids(Rng& r, int lo, int hi) {
  std::vector<int> v(lo + r.below(hi - lo));
  for (auto& x : v) x = static_cast<int>(r.below(320));
  return v;
}

// Random pre-tokenized pairs.
std::string write_pairs(const std::string& dir, int n, uint64_t seed, bool triple = false) {
  Rng r(seed);
  std::vector<json> rows;
  auto seq = [&](int lo, int hi) { return random_ids(r, lo, hi); };
  for (int i = 0; i < n; ++i) {
    json j = {{"prompt_input_ids", seq(3, 9)}, {"chosen_input_ids", seq(2, 7)}, {"rejected_input_ids", seq(2, 7)}};
    if (triple) j["reference_input_ids"] = seq(2, 7);
    rows.push_back(j);
  }
  std::string p = dir + "/pairs.jsonl";
  write_jsonl(p, rows);
  return p;
}

std::string write_unpaired(const std::string& dir, int n, uint64_t seed) {
  Rng r(seed);
  std::vector<json> rows;
  auto seq = [&](int lo, int hi) { return random_ids(r, lo, hi); };
  for (int i = 0; i < n; ++i)
    rows.push_back({{"prompt_input_ids", seq(3, 9)}, {"completion_input_ids", seq(2, 7)}, {"label", i % 3 != 0}});
  std::string p = dir + "/unpaired.jsonl";
  write_jsonl(p, rows);
  return p;
}

TrainConfig base_cfg(const std::string& out, const std::string& method = "dpo") {
  TrainConfig c;
  c.method = method;
  c.output_dir = out;
  c.learning_rate = 1e-3;
  c.per_device_train_batch_size = 8;
  c.max_steps = 2;
  c.logging_steps = 1;
  c.save_steps = 0;
  c.lr_scheduler_type = "constant";
  return c;
}

Dataset load(const std::string& p, DataKind k) { return load_dataset(p, k, nullptr, nullptr, DataOptions{}, 320); }

double max_abs_diff(CausalLM& a, CausalLM& b) {
  double m = 0;
  for (size_t i = 0; i < a.named_parameters().size(); ++i)
    m = std::max(m, (a.named_parameters()[i].second - b.named_parameters()[i].second).abs().max().item<double>());
  return m;
}

}  // namespace

// The packed [prompt | chosen | rejected (| gold)] row with a block mask gives
// the naive padded concatenation's log-probs, also through
// the full-vocab path.
TEST(Packing, PrefixSharedEqualsNaive) {
  for (const char* fam : {"llama", "qwen2", "gpt2", "gemma2"}) {
    auto model = CausalLM::from_pretrained(kData + "/models/" + fam);
    const int64_t V = model->config().vocab_size;
    Rng r(7);
    std::vector<Example> ex(5);
    for (auto& e : ex) {
      for (int i = 0, n = 2 + static_cast<int>(r.below(6)); i < n; ++i) e.prompt.push_back(static_cast<int32_t>(r.below(V)));
      for (int k = 0; k < 3; ++k) {
        Completion c;
        for (int i = 0, n = 1 + static_cast<int>(r.below(6)); i < n; ++i) {
          c.ids.push_back(static_cast<int32_t>(r.below(V)));
          c.mask.push_back(r.below(5) != 0);  // some masked-out tokens (tool observations)
        }
        c.mask[0] = 1;
        e.completions.push_back(c);
      }
    }
    std::vector<BatchItem> items;
    for (auto& e : ex) items.push_back({&e.prompt, {&e.completions[0], &e.completions[1], &e.completions[2]}});
    at::NoGradGuard ng;
    auto score = [&](bool shared, bool full) {
      PackedBatch pb = pack_batch(items, shared);
      auto h = model->forward_hidden(pb.ids, pb.position_ids, pb.attn_mask);
      return segment_logps(h.reshape({pb.rows * pb.length, -1}), model->lm_head_weight(), pb.src, pb.labels, pb.seg,
                           15, model->final_logit_softcap(), 4, full);
    };
    auto a = score(true, false), b = score(false, false), c = score(false, true);
    EXPECT_LT((a.sum - b.sum).abs().max().item<double>(), 1e-5) << fam;
    EXPECT_LT((c.sum - b.sum).abs().max().item<double>(), 1e-5) << fam;
    EXPECT_TRUE(at::equal(a.count, b.count)) << fam;
    // And against the model's own per-sequence log-probs of [prompt | ck].
    for (int64_t s = 0; s < 15; ++s) {
      const Example& e = ex[s / 3];
      const Completion& cm = e.completions[s % 3];
      std::vector<int64_t> seq(e.prompt.begin(), e.prompt.end());
      seq.insert(seq.end(), cm.ids.begin(), cm.ids.end());
      auto lp = token_logprobs(*model, {seq})[0];
      double want = 0;
      for (size_t j = 0; j < cm.ids.size(); ++j)
        if (cm.mask[j]) want += lp[e.prompt.size() - 1 + j];
      EXPECT_NEAR(a.sum[s].item<double>(), want, 1e-4) << fam << " segment " << s;
    }
  }
}

// Batch 8 x accumulation 1 equals batch 2 x accumulation 4.
TEST(Trainer, AccumulationInvariant) {
  std::string d = tmpdir("accum");
  std::string data = write_pairs(d, 16, 1);
  auto p1 = CausalLM::from_pretrained(kLlama), p2 = CausalLM::from_pretrained(kLlama);
  auto c1 = base_cfg(d + "/a");
  c1.max_steps = 2;
  auto c2 = c1;
  c2.output_dir = d + "/b";
  c2.per_device_train_batch_size = 2, c2.gradient_accumulation_steps = 4;
  Trainer t1(c1, *p1, nullptr, load(data, DataKind::Paired));
  Trainer t2(c2, *p2, nullptr, load(data, DataKind::Paired));
  auto s1 = t1.train(), s2 = t2.train();
  ASSERT_EQ(s1.logged.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(s1.logged[i]["loss"], s2.logged[i]["loss"], 1e-6);
    EXPECT_NEAR(s1.logged[i]["grad_norm"], s2.logged[i]["grad_norm"], 1e-5);
    EXPECT_NEAR(s1.logged[i]["rewards/margins"], s2.logged[i]["rewards/margins"], 1e-6);
  }
  // Adam divides by sqrt(v): where a gradient is ~0, rounding noise moves a
  // weight by up to lr, so the weights agree to a fraction of lr, and the
  // gradients themselves (below) to float rounding.
  EXPECT_LT(max_abs_diff(*p1, *p2), 0.1 * c1.learning_rate);
  // Not vacuous: batch 2 x accumulation 1 differs.
  auto p3 = CausalLM::from_pretrained(kLlama);
  auto c3 = c2;
  c3.output_dir = d + "/c", c3.gradient_accumulation_steps = 1;
  Trainer t3(c3, *p3, nullptr, load(data, DataKind::Paired));
  t3.train();
  EXPECT_GT(max_abs_diff(*p1, *p3), 0.5 * c1.learning_rate);
  // The gradient of one full micro-batch equals the sum of four quarter
  // micro-batches scaled by 1/4.
  auto q1 = CausalLM::from_pretrained(kLlama), q2 = CausalLM::from_pretrained(kLlama);
  Trainer g1(c1, *q1, nullptr, load(data, DataKind::Paired));
  Trainer g2(c2, *q2, nullptr, load(data, DataKind::Paired));
  g1.compute({0, 1, 2, 3, 4, 5, 6, 7}, false, true).loss.backward();
  for (size_t a = 0; a < 4; ++a) (g2.compute({2 * a, 2 * a + 1}, false, true).loss / 4.0).backward();
  for (size_t i = 0; i < q1->named_parameters().size(); ++i) {
    auto& x = q1->named_parameters()[i].second;
    auto& y = q2->named_parameters()[i].second;
    double scale = x.grad().abs().max().item<double>();
    EXPECT_LT((x.grad() - y.grad()).abs().max().item<double>(), 1e-5 * std::max(scale, 1e-3))
        << q1->named_parameters()[i].first;
  }
}

TEST(Trainer, EveryParameterChangesAfterOneStep) {
  std::string d = tmpdir("change");
  std::string data = write_pairs(d, 8, 2);
  for (const char* fam : {"llama", "qwen2"}) {
    auto p = CausalLM::from_pretrained(kData + "/models/" + fam);
    auto before = p->clone();
    auto c = base_cfg(d + "/out", "dpo");
    c.max_steps = 1;
    c.max_grad_norm = 0;
    // the fixture's ids are < 320; qwen2's vocab is 384
    Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
    t.train();
    for (size_t i = 0; i < p->named_parameters().size(); ++i)
      EXPECT_FALSE(at::equal(p->named_parameters()[i].second, before->named_parameters()[i].second))
          << fam << " " << p->named_parameters()[i].first;
  }
}

TEST(Trainer, DpoOverfitsEightPairs) {
  std::string d = tmpdir("overfit");
  std::string data = write_pairs(d, 8, 3);
  auto p = CausalLM::from_pretrained(kLlama);
  auto c = base_cfg(d + "/out");
  c.max_steps = 40;
  Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
  auto s = t.train();
  EXPECT_EQ(s.logged.back()["rewards/accuracies"], 1.0);
  EXPECT_LT(s.last_loss, 0.1);
  EXPECT_NEAR(s.first_loss, std::log(2.0), 1e-6);  // policy == reference at step 1
  // metrics.jsonl carries TRL's names
  auto rows = read_jsonl(d + "/out/metrics.jsonl");
  ASSERT_EQ(rows.size(), 40u);
  for (const char* k : {"loss", "grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                        "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "epoch", "step"})
    EXPECT_TRUE(rows[0].contains(k)) << k;
  // final HF model reloads with the trained weights
  auto re = CausalLM::from_pretrained(d + "/out");
  EXPECT_EQ(max_abs_diff(*p, *re), 0.0);
}

// Reference strategies: precomputed == frozen copy (and cached beside the
// data); TR-DPO with alpha 1 every step makes the reference the policy, so
// every step starts at loss ln 2; reference-free differs from both.
TEST(Trainer, ReferenceStrategies) {
  std::string d = tmpdir("ref");
  std::string data = write_pairs(d, 16, 4);
  auto run = [&](const std::string& name, std::function<void(TrainConfig&)> f) {
    auto p = CausalLM::from_pretrained(kLlama);
    auto c = base_cfg(d + "/" + name);
    c.max_steps = 4;
    c.per_device_train_batch_size = 4;
    f(c);
    Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
    return t.train();
  };
  auto frozen = run("frozen", [](TrainConfig&) {});
  auto pre = run("pre", [](TrainConfig& c) { c.precompute_ref_log_probs = true; });
  for (size_t i = 0; i < frozen.logged.size(); ++i) EXPECT_NEAR(frozen.logged[i]["loss"], pre.logged[i]["loss"], 1e-6);
  bool cached = false;
  for (auto& e : fs::directory_iterator(d)) cached |= e.path().filename().string().find(".ref-logps-") != std::string::npos;
  EXPECT_TRUE(cached);
  auto pre2 = run("pre2", [](TrainConfig& c) { c.precompute_ref_log_probs = true; });  // read from the cache
  EXPECT_NEAR(pre2.logged.back()["loss"], pre.logged.back()["loss"], 1e-7);
  auto sync = run("sync", [](TrainConfig& c) {
    c.sync_ref_model = true, c.ref_model_mixup_alpha = 1.0, c.ref_model_sync_steps = 1;
  });
  for (auto& m : sync.logged) EXPECT_NEAR(m["loss"], std::log(2.0), 1e-6);
  EXPECT_GT(std::abs(frozen.logged.back()["loss"] - std::log(2.0)), 1e-3);
  auto free = run("free", [](TrainConfig& c) { c.reference_free = true; });
  EXPECT_GT(std::abs(free.logged[0]["loss"] - std::log(2.0)), 1e-4);
}

// Triple-PO through the trainer equals the formula on separately computed
// log-probs: alpha * token-mean gold NLL + mean -log sigmoid(beta (lw - ll)).
TEST(Trainer, TriplePoByHand) {
  std::string d = tmpdir("tpo");
  std::string data = write_pairs(d, 4, 5, true);
  auto p = CausalLM::from_pretrained(kLlama);
  auto c = base_cfg(d + "/out", "tpo");
  c.beta = 0.5, c.tpo_alpha = 0.7;
  Dataset ds = load(data, DataKind::Triple);
  Trainer t(c, *p, nullptr, ds);
  auto ms = t.compute({0, 1, 2, 3}, false, false);
  double gold_lp = 0, gold_n = 0, pref = 0;
  for (auto& e : ds.rows) {
    auto lp = [&](const Completion& cm) {
      std::vector<int64_t> s(e.prompt.begin(), e.prompt.end());
      s.insert(s.end(), cm.ids.begin(), cm.ids.end());
      auto v = token_logprobs(*p, {s})[0];
      double sum = 0;
      for (size_t j = 0; j < cm.ids.size(); ++j) sum += v[e.prompt.size() - 1 + j];
      return sum;
    };
    double w = lp(e.completions[0]), l = lp(e.completions[1]);
    gold_lp += lp(e.completions[2]), gold_n += e.completions[2].ids.size();
    pref += std::log1p(std::exp(-0.5 * (w - l)));
  }
  const double want = 0.7 * (-gold_lp / gold_n) + pref / 4;
  EXPECT_NEAR(ms.metrics["loss"], want, 1e-4);
  EXPECT_NEAR(ms.metrics["nll_loss"], -gold_lp / gold_n, 1e-4);
}

// Multi-turn: a trajectory with a tool observation; with the mask the tool
// tokens never count (M-DPO), without it they do.
TEST(Data, MultiTurnMaskByHand) {
  std::string d = tmpdir("multiturn");
  Tokenizer tok = Tokenizer::load(kData + "/tokenizers/qwen2");
  ChatTemplate tmpl = ChatTemplate::by_name("chatml");
  json traj = {{"prompt", {{{"role", "user"}, {"content", "What is 17*23?"}}}},
               {"chosen",
                {{{"role", "assistant"}, {"content", "```python\nprint(17*23)\n```"}},
                 {{"role", "tool"}, {"content", "391"}},
                 {{"role", "assistant"}, {"content", "The answer is 391."}}}},
               {"rejected", {{{"role", "assistant"}, {"content", "The answer is 381."}}}}};
  write_jsonl(d + "/mt.jsonl", {traj});
  DataOptions o;
  Dataset masked = load_dataset(d + "/mt.jsonl", DataKind::Paired, &tok, &tmpl, o);
  o.mask_tool_observations = false;
  Dataset unmasked = load_dataset(d + "/mt.jsonl", DataKind::Paired, &tok, &tmpl, o);
  const Completion& cm = masked.rows[0].completions[0];
  // Hand-derived: render the whole conversation, the roles give the mask.
  std::vector<ChatMessage> all = {{"user", "What is 17*23?"},
                                  {"assistant", "```python\nprint(17*23)\n```"},
                                  {"tool", "391"},
                                  {"assistant", "The answer is 391."}};
  auto full = tmpl.render(tok, all, false);
  auto prompt = tmpl.render(tok, {all[0]}, true);
  ASSERT_EQ(masked.rows[0].prompt, prompt.ids);
  ASSERT_EQ(cm.ids.size() + prompt.ids.size(), full.ids.size());
  size_t tool_tokens = 0, asst_tokens = 0;
  for (size_t i = 0; i < cm.ids.size(); ++i) {
    Role r = full.roles[prompt.ids.size() + i];
    EXPECT_EQ(cm.mask[i], r == Role::Assistant ? 1 : 0) << i;
    EXPECT_EQ(unmasked.rows[0].completions[0].mask[i], (r == Role::Assistant || r == Role::Tool) ? 1 : 0) << i;
    tool_tokens += r == Role::Tool, asst_tokens += r == Role::Assistant;
  }
  EXPECT_GT(tool_tokens, 0u);
  EXPECT_GT(asst_tokens, 10u);
  // "391" (the observation) is decoded from exactly the tool tokens
  std::vector<int32_t> tool_ids;
  for (size_t i = 0; i < cm.ids.size(); ++i)
    if (full.roles[prompt.ids.size() + i] == Role::Tool) tool_ids.push_back(cm.ids[i]);
  EXPECT_EQ(tok.decode(tool_ids), "391");
}

TEST(Data, TextRowsFollowTrl) {
  std::string d = tmpdir("text");
  Tokenizer tok = Tokenizer::load(kData + "/tokenizers/gpt2");
  write_jsonl(d + "/t.jsonl", {json{{"prompt", "Hello there"}, {"chosen", " General Kenobi"}, {"rejected", " hi"}},
                               json{{"chosen", "\n\nHuman: hi\n\nAssistant: Sure thing"},
                                    {"rejected", "\n\nHuman: hi\n\nAssistant: No"}}});
  Dataset ds = load_dataset(d + "/t.jsonl", DataKind::Paired, &tok, nullptr, DataOptions{});
  ASSERT_EQ(ds.rows.size(), 2u);
  const int32_t eos = *tok.eos_id();
  auto e0 = tok.encode("Hello there");
  std::vector<int32_t> want_prompt;
  if (tok.bos_id()) want_prompt.push_back(*tok.bos_id());
  want_prompt.insert(want_prompt.end(), e0.begin(), e0.end());
  EXPECT_EQ(ds.rows[0].prompt, want_prompt);
  auto ch = tok.encode(" General Kenobi");
  ch.push_back(eos);
  EXPECT_EQ(ds.rows[0].completions[0].ids, ch);
  // implicit prompt: the shared prefix, the space stays with the completions
  EXPECT_EQ(implicit_prompt_length("\n\nHuman: hi\n\nAssistant: Sure thing", "\n\nHuman: hi\n\nAssistant: No"),
            std::string("\n\nHuman: hi\n\nAssistant:").size());
  auto c1 = tok.encode(" Sure thing");
  c1.push_back(eos);
  EXPECT_EQ(ds.rows[1].completions[0].ids, c1);
}

TEST(Data, TruncationAndSkips) {
  std::string d = tmpdir("trunc");
  std::vector<json> rows;
  std::vector<int> longp(50, 7), shortp(5, 7), comp(30, 9);
  rows.push_back({{"prompt_input_ids", longp}, {"chosen_input_ids", comp}, {"rejected_input_ids", comp}});
  rows.push_back({{"prompt_input_ids", shortp}, {"chosen_input_ids", comp}, {"rejected_input_ids", {1}}});
  write_jsonl(d + "/t.jsonl", rows);
  DataOptions o;
  o.max_length = 40, o.max_prompt_length = 100;
  Dataset ds = load_dataset(d + "/t.jsonl", DataKind::Paired, nullptr, nullptr, o, 320);
  EXPECT_EQ(ds.skipped, 1u);  // prompt 50 >= max_length 40
  ASSERT_EQ(ds.rows.size(), 1u);
  EXPECT_EQ(ds.rows[0].line, 2u);
  EXPECT_EQ(ds.rows[0].completions[0].ids.size(), 30u);  // fits in 40 - 5
  EXPECT_EQ(ds.rows[0].completions[1].ids.size(), 1u);
  o.max_prompt_length = 20;  // keep_end: the last 20 prompt tokens
  Dataset ds2 = load_dataset(d + "/t.jsonl", DataKind::Paired, nullptr, nullptr, o, 320);
  EXPECT_EQ(ds2.skipped, 0u);
  EXPECT_EQ(ds2.rows[0].prompt.size(), 20u);
  EXPECT_EQ(ds2.rows[0].completions[0].ids.size(), 20u);  // 40 - 20
  o.max_completion_length = 8;
  Dataset ds3 = load_dataset(d + "/t.jsonl", DataKind::Paired, nullptr, nullptr, o, 320);
  EXPECT_EQ(ds3.rows[0].completions[0].ids.size(), 8u);
  o.truncation_mode = "keep_start";
  std::vector<json> r2 = {{{"prompt_input_ids", std::vector<int>{1, 2, 3, 4, 5}}, {"chosen_input_ids", std::vector<int>{9}},
                           {"rejected_input_ids", std::vector<int>{8}}}};
  write_jsonl(d + "/k.jsonl", r2);
  o.max_prompt_length = 3;
  EXPECT_EQ(load_dataset(d + "/k.jsonl", DataKind::Paired, nullptr, nullptr, o, 320).rows[0].prompt,
            (std::vector<int32_t>{1, 2, 3}));
  o.truncation_mode = "keep_end";
  EXPECT_EQ(load_dataset(d + "/k.jsonl", DataKind::Paired, nullptr, nullptr, o, 320).rows[0].prompt,
            (std::vector<int32_t>{3, 4, 5}));
}

TEST(Data, MalformedRowsNameFileAndLine) {
  std::string d = tmpdir("bad");
  auto expect_error = [&](const std::string& line, const std::string& needle, DataKind k = DataKind::Paired) {
    std::string p = d + "/bad.jsonl";
    std::ofstream(p) << (k == DataKind::Unpaired
                             ? "{\"prompt_input_ids\": [1], \"completion_input_ids\": [2], \"label\": true}\n"
                             : "{\"prompt_input_ids\": [1], \"chosen_input_ids\": [2], \"rejected_input_ids\": [3]}\n")
                     << line << "\n";
    try {
      load_dataset(p, k, nullptr, nullptr, DataOptions{}, 320);
      ADD_FAILURE() << "no error for " << line;
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find(p + ":2"), std::string::npos) << m;
      EXPECT_NE(m.find(needle), std::string::npos) << m;
    }
  };
  expect_error(R"({"prompt_input_ids": [1], "chosen_input_ids": [2]})", "missing field \"rejected_input_ids\"");
  expect_error(R"({"prompt_input_ids": [1], "chosen_input_ids": [], "rejected_input_ids": [3]})", "is empty");
  expect_error(R"({"prompt_input_ids": [1], "chosen_input_ids": "x", "rejected_input_ids": [3]})", "list of token ids");
  expect_error(R"({"prompt_input_ids": [1], "chosen_input_ids": [999], "rejected_input_ids": [3]})", "outside the vocabulary");
  expect_error(R"({"prompt": "a", "chosen": "b"})", "missing field \"rejected\"");
  expect_error(R"({"prompt": "a", "chosen": 5, "rejected": "c"})", "must be a string");
  expect_error(R"({"prompt": "a", "chosen": "b", "rejected": "c"})", "no tokenizer");
  expect_error(R"({"prompt": [{"role": "user", "content": "x"}], "chosen": [{"role": "wizard", "content": "y"}], "rejected": [{"role": "assistant", "content": "z"}]})",
               "unknown role");
  expect_error(R"({"prompt_input_ids": [1], "completion_input_ids": [2], "label": "yes"})", "label", DataKind::Unpaired);
  expect_error(R"({"prompt_input_ids": [1], "completion_input_ids": [2]})", "missing field \"label\"", DataKind::Unpaired);
  expect_error("{not json", "");
}

TEST(Config, TomlFlagsAndUnknownKeys) {
  std::string d = tmpdir("cfg");
  std::ofstream(d + "/c.toml") << "beta = 0.25\nloss_type = \"ipo\"\nlearning_rate = 1\nmax_steps = 7\nreference_free = true\n";
  TrainConfig c;
  load_config_toml(c, d + "/c.toml");
  EXPECT_EQ(c.beta, 0.25);
  EXPECT_EQ(c.loss_type, "ipo");
  EXPECT_EQ(c.learning_rate, 1.0);
  EXPECT_EQ(c.max_steps, 7);
  EXPECT_TRUE(c.reference_free);
  set_config_value(c, "beta", "0.5", "--beta");
  EXPECT_EQ(c.beta, 0.5);
  EXPECT_THROW(set_config_value(c, "beta", "abc", "--beta"), Error);
  std::ofstream(d + "/bad.toml") << "beta = 0.1\nbetta = 0.2\n";
  try {
    load_config_toml(c, d + "/bad.toml");
    ADD_FAILURE();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.toml:2"), std::string::npos) << m;
    EXPECT_NE(m.find("betta"), std::string::npos) << m;
  }
  std::ofstream(d + "/type.toml") << "max_steps = \"ten\"\n";
  EXPECT_THROW(load_config_toml(c, d + "/type.toml"), Error);
  TrainConfig v;
  v.lr_scheduler_type = "exponential";
  EXPECT_THROW(v.validate(), Error);
}

// HF schedules: linear and cosine with warm-up.
TEST(Config, Schedules) {
  std::string d = tmpdir("sched");
  std::string data = write_pairs(d, 8, 6);
  auto p = CausalLM::from_pretrained(kLlama);
  auto c = base_cfg(d + "/o");
  c.max_steps = 10, c.warmup_ratio = 0.2, c.lr_scheduler_type = "linear";
  Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
  EXPECT_DOUBLE_EQ(t.lr_at(0), 0.0);
  EXPECT_DOUBLE_EQ(t.lr_at(1), 0.5e-3);
  EXPECT_DOUBLE_EQ(t.lr_at(2), 1e-3);
  EXPECT_DOUBLE_EQ(t.lr_at(6), 0.5e-3);
  c.lr_scheduler_type = "cosine";
  Trainer t2(c, *p, nullptr, load(data, DataKind::Paired));
  EXPECT_NEAR(t2.lr_at(6), 0.5e-3, 1e-12);
  EXPECT_NEAR(t2.lr_at(4), 1e-3 * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
}

// A non-finite loss stops training naming the step and rows; the last
// checkpoint stays loadable.
TEST(Trainer, NanGuard) {
  std::string d = tmpdir("nan");
  std::string data = write_pairs(d, 8, 8);
  auto p = CausalLM::from_pretrained(kLlama);
  auto c = base_cfg(d + "/o");
  c.max_steps = 6, c.save_steps = 1, c.learning_rate = 1e30, c.max_grad_norm = 0;
  Trainer t(c, *p, nullptr, load(data, DataKind::Paired));
  try {
    t.train();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("step "), std::string::npos) << m;
    EXPECT_TRUE(m.find("pairs.jsonl:") != std::string::npos || m.find("gradient norm") != std::string::npos) << m;
    EXPECT_NE(m.find("last checkpoint is intact"), std::string::npos) << m;
  }
  std::string last = latest_checkpoint(d + "/o");
  ASSERT_FALSE(last.empty());
  EXPECT_NO_THROW(CausalLM::from_pretrained(last));
}

// KTO: the KL term is detached, clamped at 0 and logged; BCO logs delta.
TEST(Trainer, KtoAndBcoTrain) {
  std::string d = tmpdir("kto");
  std::string data = write_unpaired(d, 12, 9);
  for (const char* m : {"kto", "bco"}) {
    auto p = CausalLM::from_pretrained(kLlama);
    auto c = base_cfg(d + "/" + m, m);
    c.max_steps = 6, c.per_device_train_batch_size = 4;
    c.bco_udm = std::string(m) == "bco";
    Trainer t(c, *p, nullptr, load(data, DataKind::Unpaired));
    auto s = t.train();
    EXPECT_LT(s.last_loss, s.first_loss) << m;
    if (std::string(m) == "kto") {
      EXPECT_TRUE(s.logged[0].count("kl"));
      for (auto& row : s.logged) EXPECT_GE(row["kl"], 0.0);
    } else {
      EXPECT_TRUE(s.logged[0].count("delta"));
    }
  }
}

// BCO with UDM: a save / resume gives the uninterrupted trajectory even when
// the resumed trainer is built from another policy (here the checkpoint's own
// weights, with the initial model as the reference, as `--model CHECKPOINT
// --ref-model INITIAL`), since the checkpoint's classifier and row weights are
// restored rather than fitted again on that policy's embeddings. Negative control: a checkpoint without them gives
// another trajectory. A resume with other settings warns with each key.
TEST(Trainer, BcoUdmResumeRestoresTheClassifier) {
  std::string d = tmpdir("bco_udm_resume");
  std::string data = write_unpaired(d, 16, 21);
  auto c = base_cfg(d + "/a", "bco");
  c.bco_udm = true, c.max_steps = 4, c.per_device_train_batch_size = 4, c.save_steps = 2, c.learning_rate = 1e-2;
  auto pa = CausalLM::from_pretrained(kLlama);
  Trainer ta(c, *pa, nullptr, load(data, DataKind::Unpaired));
  auto full = ta.train();
  ASSERT_EQ(full.logged.size(), 4u);
  const std::string ck = d + "/a/checkpoint-2";
  ASSERT_TRUE(fs::exists(ck + "/trainer_state.json"));
  auto opt = io::load_safetensors(ck + "/optimizer.safetensors", at::kFloat);
  ASSERT_TRUE(opt.count("udm.w") && opt.count("udm.row_weight"));
  EXPECT_EQ(opt.at("udm.row_weight").numel(), 16);

  auto resume = [&](const std::string& from, const std::string& out, const TrainConfig& cfg) {
    auto p = CausalLM::from_pretrained(ck);  // not the initial policy: a fresh fit would differ
    auto rc = cfg;
    rc.output_dir = out;
    Trainer t(rc, *p, CausalLM::from_pretrained(kLlama), load(data, DataKind::Unpaired));
    return t.train(from);
  };
  auto same = resume(ck, d + "/b", c);
  ASSERT_EQ(same.logged.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    for (const char* k : {"loss", "delta", "grad_norm", "rewards/rejected"})
      EXPECT_NEAR(same.logged[i][k], full.logged[i + 2][k], 1e-6 + 1e-6 * std::abs(full.logged[i + 2][k]))
          << k << " at step " << i + 3;
  }

  // Negative control: the same checkpoint without the UDM tensors.
  const std::string bare = d + "/bare-checkpoint-2";
  fs::copy(ck, bare, fs::copy_options::recursive);
  opt.erase("udm.w"), opt.erase("udm.row_weight");
  io::save_safetensors(bare + "/optimizer.safetensors", opt, at::kFloat);
  ::testing::internal::CaptureStderr();
  auto other = resume(bare, d + "/c", c);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("no BCO UDM classifier"), std::string::npos) << err;
  double diff = 0;
  for (size_t i = 0; i < 2; ++i) diff = std::max(diff, std::abs(other.logged[i]["loss"] - full.logged[i + 2]["loss"]));
  EXPECT_GT(diff, 1e-5);

  // Other settings: a warning naming each key that matters, not output_dir.
  auto changed = c;
  changed.learning_rate = 2e-2, changed.max_steps = 5;
  ::testing::internal::CaptureStderr();
  resume(ck, d + "/e", changed);
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("learning_rate: 0.01 -> 0.02"), std::string::npos) << err;
  EXPECT_NE(err.find("max_steps: 4 -> 5"), std::string::npos) << err;
  EXPECT_EQ(err.find("output_dir"), std::string::npos) << err;
  ::testing::internal::CaptureStderr();
  resume(ck, d + "/f", c);
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("config differs"), std::string::npos) << err;
}
