// prefopt generate --model DIR --input IDS.jsonl --max-new-tokens N  (greedy)
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "model/model.h"

namespace prefopt::cli {

std::vector<std::vector<int64_t>> read_id_rows(const std::string& path, int64_t vocab);

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate continuations (greedy with --input ids)");
  auto model = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto max_new = std::make_shared<int>(32);
  cmd->add_option("--model", *model, "HF model directory")->required();
  cmd->add_option("--input", *input, "JSONL with {\"input_ids\": [...]}: greedy decoding")->required();
  cmd->add_option("--max-new-tokens", *max_new, "new tokens per input");
  cmd->callback([=] {
    auto m = CausalLM::from_pretrained(*model);
    auto rows = read_id_rows(*input, m->config().vocab_size);
    for (auto& r : rows) {
      auto out = greedy_generate(*m, {r}, *max_new, m->config().eos_token_ids)[0];
      std::printf("%s\n", nlohmann::json{{"output_ids", out}}.dump().c_str());
    }
  });
}

}  // namespace prefopt::cli
