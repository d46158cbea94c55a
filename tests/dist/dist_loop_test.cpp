// Distributed sampling in `prefopt iterate`: 2 ranks (training with
// accumulation 1) against 1 rank (accumulation 2). The prompts of the round
// and the held-out problems are split over the ranks, every sample's seed is
// independent of the rank, so the graded samples, the training rows
// (pairs.jsonl), pass@k per problem and the trained round are the same; and
// so are those of the 2 ranks `iterate --nproc_per_node 2` starts itself.
#include "dist/dist_common.h"

#include <fstream>

#include "tokenizer/tokenizer.h"

using namespace prefopt;
using namespace prefopt::disttest;

namespace {

// A random tiny Llama with a byte-level BPE tokenizer over arithmetic text:
// its samples hold digits, so some end with the right one-digit answer (the
// GSM8K grader takes the last number) and KTO rows of both labels appear.
std::string tiny_model_with_tokenizer(const std::string& dir) {
  std::vector<std::string> corpus;
  for (int a = 0; a < 10; ++a)
    for (int b = 0; a + b < 10; ++b)
      corpus.push_back("What is " + std::to_string(a) + " plus " + std::to_string(b) + "? The answer is " +
                       std::to_string(a + b) + ".");
  Tokenizer tok = train_bpe(corpus, 300, {"<|endoftext|>"}, /*split_digits=*/true);
  const std::string m = dir + "/tiny";
  auto cfg = llama_config(tok.vocab_size(), 32, 2, 2, 1, 64, 128);
  CausalLM::from_config(cfg, 3)->save_pretrained(m);
  tok.save_pretrained(m);
  return m;
}

void write_problems(const std::string& path, int n, int offset) {
  std::vector<json> rows;
  for (int i = 0; i < n; ++i) {
    const int a = (i + offset) % 7, b = (i * 3 + offset) % 3;
    rows.push_back({{"id", "p" + std::to_string(i + offset)},
                    {"question", "What is " + std::to_string(a) + " plus " + std::to_string(b) + "?"},
                    {"answer", std::to_string(a + b)}});
  }
  write_jsonl(path, rows);
}

std::string iterate_toml(const std::string& d, const std::string& model, const std::string& out, int accumulation) {
  const std::string path = d + "/" + out + ".toml";
  std::ofstream f(path);
  f << "model = \"" << model << "\"\nprompts = \"" << d << "/train.jsonl\"\nheld_out = \"" << d
    << "/held.jsonl\"\noutput_dir = \"" << d << "/" << out << "\"\nmethod = \"kto\"\nrounds = 1\nn_samples = 4\n"
    << "eval_n = 4\nmax_new_tokens = 8\nseed = 5\n[train]\nper_device_train_batch_size = 8\n"
    << "gradient_accumulation_steps = " << accumulation << "\nlearning_rate = 1e-3\nmax_steps = 3\n"
    << "logging_steps = 1\nddp_timeout = 120\n";
  return path;
}

json passk(const std::string& dir) { return json::parse(read_text(dir + "/passk.json")); }

}  // namespace

TEST(DistLoop, IterateOnTwoRanksEqualsOneRank) {
  const std::string d = tmpdir("loop");
  const std::string model = tiny_model_with_tokenizer(d);
  write_problems(d + "/train.jsonl", 40, 0);  // 3 slices of 16 prompts: rank 0 samples two, rank 1 one
  write_problems(d + "/held.jsonl", 20, 100);
  ASSERT_EQ(run_one("iterate --config " + iterate_toml(d, model, "one", 2), d + "/one.log"), 0)
      << read_text(d + "/one.log");
  ASSERT_EQ(run_torchrun(2, "iterate --config " + iterate_toml(d, model, "two", 1), d + "/two.log"), 0)
      << ranks_log(d + "/two.log");
  // The training rows: every sample of every prompt, graded, in the same order, byte for byte.
  const std::string rows1 = read_text(d + "/one/round1/pairs.jsonl"), rows2 = read_text(d + "/two/round1/pairs.jsonl");
  EXPECT_EQ(read_jsonl(d + "/one/round1/pairs.jsonl").size(), 160u);
  EXPECT_EQ(rows1, rows2);
  EXPECT_NE(rows1.find("\"label\":true"), std::string::npos) << "some samples are correct";
  EXPECT_NE(rows1.find("\"label\":false"), std::string::npos);
  // pass@k per held-out problem before and after the round.
  EXPECT_EQ(passk(d + "/one/base"), passk(d + "/two/base"));
  EXPECT_EQ(passk(d + "/one/round1"), passk(d + "/two/round1"));
  // The round trained the same steps: metrics and weights.
  expect_same_run(read_run(d + "/one/round1"), read_run(d + "/two/round1"), 1e-5);
  auto s1 = json::parse(read_text(d + "/one/summary.json")), s2 = json::parse(read_text(d + "/two/summary.json"));
  ASSERT_EQ(s1["rounds"].size(), 2u);
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(s1["rounds"][r]["pass_at_k"], s2["rounds"][r]["pass_at_k"]) << r;
    EXPECT_EQ(s1["rounds"][r]["greedy_accuracy"], s2["rounds"][r]["greedy_accuracy"]) << r;
  }
  // Rank 1 sampled (its share of the rows reached rank 0) but wrote nothing of its own.
  EXPECT_NE(ranks_log(d + "/two.log").find("dist: rank 1 of 2"), std::string::npos);
  // The same 2 ranks started by `iterate --nproc_per_node 2` itself: the same rows, pass@k and weights.
  ASSERT_EQ(sh("env -u WORLD_SIZE -u RANK " + exe() + " iterate --nproc_per_node 2 --config " +
               iterate_toml(d, model, "launched", 1) + " > " + d + "/launched.log 2>&1"),
            0)
      << read_text(d + "/launched.log");
  EXPECT_EQ(read_text(d + "/launched/round1/pairs.jsonl"), rows2);
  EXPECT_EQ(passk(d + "/launched/round1"), passk(d + "/two/round1"));
  expect_same_run(read_run(d + "/launched/round1"), read_run(d + "/two/round1"), 0.0);
  EXPECT_NE(read_text(d + "/launched.log").find("[rank 1] dist: rank 1 of 2"), std::string::npos)
      << read_text(d + "/launched.log");
}
