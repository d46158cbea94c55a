// prefopt generate --prompts as a user runs it: text / messages / ids rows,
// n samples per prompt, fields carried along, and every sample equal to the
// library's sample() on the same prompts (the CLI's batching and streams do not
// change results); bad rows give file:line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_cli.h"
#include "core/fs.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;
using prefopt::testing::run_prefopt;
namespace fs = std::filesystem;

TEST(GenerateCli, SamplesMatchTheLibraryAndCarryFields) {
  const std::string dir = std::string(PREFOPT_BINARY_DIR) + "/generate_cli_model";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string src = std::string(PREFOPT_SHARED_DATA) + "/models/llama/";
  fs::copy_file(src + "config.json", dir + "/config.json");
  fs::copy_file(src + "model.safetensors", dir + "/model.safetensors");
  Tokenizer tok0 = train_bpe({"the cat sat on the mat. the dog ran to the cat! user: hi"}, 300, {"<eos>"});
  tok0.save_pretrained(dir);
  Tokenizer tok = Tokenizer::load(dir);
  auto m = CausalLM::from_pretrained(dir);

  const std::string prompts = dir + "/prompts.jsonl";
  {
    std::ofstream f(prompts);
    f << R"({"prompt": "the cat", "task_id": "t/0", "answer": "5"})" << "\n"
      << R"({"input_ids": [1, 78, 213]})" << "\n"
      << R"({"messages": [{"role": "user", "content": "hi"}], "id": 7})" << "\n";
  }
  int rc = -1;
  run_prefopt("generate --model " + dir + " --prompts " + prompts +
                  " --n 3 --temperature 0.7 --top-p 0.9 --seed 4 --max-new-tokens 8 --batch-size 2 --chat-template "
                  "plain --output " + dir + "/out.jsonl",
              &rc);
  ASSERT_EQ(rc, 0);
  std::vector<nlohmann::json> rows;
  {
    std::istringstream in(read_file(dir + "/out.jsonl"));
    std::string line;
    while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(rows.size(), 9u);

  // The same prompts through the library, all in one batch.
  auto e0 = tok.encode("the cat", true);
  auto e2 = ChatTemplate::by_name("plain").render(tok, {{"user", "hi"}}, true).ids;
  std::vector<std::vector<int64_t>> ids{{e0.begin(), e0.end()}, {1, 78, 213}, {e2.begin(), e2.end()}};
  SamplingParams sp;
  sp.n = 3, sp.temperature = 0.7, sp.top_p = 0.9, sp.seed = 4, sp.max_new_tokens = 8;
  sp.eos_ids = m->config().eos_token_ids;
  if (auto e = tok.eos_id()) sp.eos_ids.push_back(*e);
  auto want = sample(*m, &tok, ids, sp);
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& o = rows[r];
    EXPECT_EQ(o["prompt_index"], r / 3);
    EXPECT_EQ(o["sample_index"], r % 3);
    const Sample& s = want[r / 3][r % 3];
    EXPECT_EQ(o["ids"].get<std::vector<int64_t>>(), s.ids) << r;
    EXPECT_EQ(o["text"], s.text);
    EXPECT_EQ(o["finish_reason"], s.finish_reason);
    EXPECT_NEAR(o["logprob_sum"].get<double>(), s.logprob_sum, 1e-4);
  }
  EXPECT_EQ(rows[0]["task_id"], "t/0");
  EXPECT_EQ(rows[2]["answer"], "5");
  EXPECT_EQ(rows[0]["prompt"], "the cat");
  EXPECT_EQ(rows[8]["id"], 7);
  EXPECT_FALSE(rows[3].contains("input_ids"));

  // A row with none of the prompt keys: file:line error with a hint, exit code 2.
  {
    std::ofstream f(prompts);
    f << R"({"prompt": "ok"})" << "\n" << R"({"question": "no prompt key"})" << "\n";
  }
  auto err = run_prefopt("generate --model " + dir + " --prompts " + prompts, &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(err.find("prompts.jsonl:2"), std::string::npos) << err;
  EXPECT_NE(err.find("question"), std::string::npos) << err;
}
