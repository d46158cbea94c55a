// The CLI as later issues call it: prefopt info / logprobs / generate.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/run_cli.h"
#include "core/fs.h"

using json = nlohmann::json;
static std::string exe() { return prefopt::testing::prefopt_exe(); }
static std::string run(const std::string& args, int* rc = nullptr) {
  return prefopt::testing::run_prefopt(args, rc, true);
}

TEST(Cli, LogprobsAndGenerateMatchReference) {
  ASSERT_TRUE(prefopt::file_exists(exe())) << "prefopt not built: " << exe();
  for (std::string fam : {"llama", "gpt2", "gemma2"}) {
    std::string dir = std::string(PREFOPT_SHARED_DATA) + "/models/" + fam;
    auto ref = json::parse(prefopt::read_file(dir + "/reference.json"));
    std::string in = "/tmp/prefopt_cli_ids_" + fam + ".jsonl";
    json r0 = {{"input_ids", ref["input_ids"][1]}, {"attention_mask", ref["attention_mask"][1]}};
    json r1 = {{"input_ids", ref["generation"]["prompt_ids"]}};
    prefopt::atomic_write(in, r0.dump() + "\n" + r1.dump() + "\n");
    std::istringstream lp(run("logprobs --model " + dir + " --input " + in));
    std::string line;
    std::getline(lp, line);
    auto j = json::parse(line);
    ASSERT_EQ(j["token_logprobs"].size(), ref["next_token_logprobs"][1].size());
    for (size_t i = 0; i < j["token_logprobs"].size(); ++i)
      EXPECT_NEAR(j["token_logprobs"][i].get<double>(), ref["next_token_logprobs"][1][i].get<double>(), 1e-4);
    EXPECT_NEAR(j["sum"].get<double>(), ref["sequence_logprob_sum"][1].get<double>(), 1e-3);
    std::istringstream g(run("generate --model " + dir + " --input " + in + " --max-new-tokens 10"));
    std::getline(g, line);
    std::getline(g, line);
    EXPECT_EQ(json::parse(line)["output_ids"], ref["generation"]["new_token_ids"]) << fam;
    auto info = json::parse(run("info " + dir));
    EXPECT_EQ(info["family"], fam);
    EXPECT_EQ(info["vocab_size"], ref["logits_seq0_shape"][1]);
  }
  // bad input: error names file and line, exit code 2
  prefopt::atomic_write("/tmp/prefopt_cli_bad.jsonl", "{\"input_ids\":[1,2]}\n{\"input_ids\":[1,99999]}\n");
  int rc = 0;
  auto out = run("logprobs --model " + std::string(PREFOPT_SHARED_DATA) + "/models/llama --input /tmp/prefopt_cli_bad.jsonl", &rc);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("/tmp/prefopt_cli_bad.jsonl:2"), std::string::npos) << out;
}
