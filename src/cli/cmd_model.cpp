// prefopt logprobs --model DIR [--adapter DIR] --input IDS.jsonl
// prefopt merge-lora --model BASE --adapter DIR --output DIR
// prefopt convert --from llama2c IN.bin OUT_DIR
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "model/device.h"
#include "model/llama2c.h"
#include "model/lora.h"
#include "model/model.h"

namespace prefopt::cli {

// Reads {"input_ids":[...], "attention_mask":[...]?} rows; keeps the ids whose
// mask is 1 (so padded rows from other tools work). Errors name file:line.
std::vector<std::vector<int64_t>> read_id_rows(const std::string& path, int64_t vocab) {
  std::vector<std::vector<int64_t>> rows;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    const json& ids = require_field(row, "input_ids", path, line);
    if (!ids.is_array()) fail(where(path, line), "\"input_ids\" must be an array of integers");
    std::vector<int64_t> v;
    const json* mask = row.contains("attention_mask") ? &row["attention_mask"] : nullptr;
    if (mask && (!mask->is_array() || mask->size() != ids.size()))
      fail(where(path, line), "\"attention_mask\" must be an array as long as \"input_ids\"");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number_integer()) fail(where(path, line), fmt::format("input_ids[{}] is not an integer", i));
      int64_t id = ids[i].get<int64_t>();
      if (mask && !(*mask)[i].is_number_integer()) fail(where(path, line), "attention_mask must hold 0/1 integers");
      if (mask && (*mask)[i].get<int64_t>() == 0) continue;
      if (id < 0 || id >= vocab)
        fail(where(path, line), fmt::format("token id {} is outside the model's vocabulary [0, {})", id, vocab),
             "were these ids made with this model's tokenizer?");
      v.push_back(id);
    }
    rows.push_back(std::move(v));
  });
  return rows;
}

void register_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("logprobs", "Per-token log-probabilities log p(x[t+1] | x[<=t]) of id sequences");
  auto model = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto adapter = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>("auto");
  cmd->add_option("--model", *model, "HF model directory")->required();
  cmd->add_option("--device", *device, kDeviceHelp);
  cmd->add_option("--adapter", *adapter, "a LoRA adapter directory (PEFT format) applied to --model");
  cmd->add_option("--input", *input, "JSONL with {\"input_ids\": [...]} (optional \"attention_mask\")")->required();
  cmd->callback([=] {
    auto m = CausalLM::from_pretrained(*model, parse_device(*device));
    if (!adapter->empty()) load_lora(*m, *adapter);
    auto rows = read_id_rows(*input, m->config().vocab_size);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].size() > static_cast<size_t>(m->config().max_position_embeddings))
        fail(where(*input, i + 1), fmt::format("sequence of {} tokens exceeds the model's context length {}",
                                               rows[i].size(), m->config().max_position_embeddings));
      auto lp = token_logprobs(*m, {rows[i]})[0];
      double sum = 0;
      for (float x : lp) sum += x;
      nlohmann::json out = {{"token_logprobs", lp}, {"sum", sum}};
      std::printf("%s\n", out.dump().c_str());
    }
  });

  // prefopt merge-lora: W + (lora_alpha / r) * B A into a plain HF model directory.
  auto* mg = app.add_subcommand("merge-lora", "Merge a LoRA adapter (PEFT format) into its base model");
  auto mbase = std::make_shared<std::string>();
  auto madapter = std::make_shared<std::string>();
  auto mout = std::make_shared<std::string>();
  mg->add_option("--model", *mbase, "base HF model directory")->required();
  mg->add_option("--adapter", *madapter, "adapter directory (adapter_config.json + adapter_model.safetensors)")->required();
  mg->add_option("--output", *mout, "HF model directory to write")->required();
  mg->callback([=] {
    auto m = CausalLM::from_pretrained(*mbase);
    load_lora(*m, *madapter);
    const int64_t adapted = m->lora()->num_parameters();
    merge_lora(*m);
    m->save_pretrained(*mout, m->dtype());
    copy_tokenizer_files(*mbase, *mout, /*keep_existing=*/true);
    std::printf("%s\n", nlohmann::json{{"output_dir", *mout}, {"adapter_parameters_merged", adapted}}.dump().c_str());
  });

  // prefopt convert --from llama2c IN.bin OUT_DIR: an HF Llama directory.
  auto* conv = app.add_subcommand("convert", "Convert a foreign checkpoint into an HF model directory");
  auto from = std::make_shared<std::string>();
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  conv->add_option("--from", *from, "source format")->required()->check(CLI::IsMember({"llama2c"}));
  conv->add_option("input", *in, "llama2.c legacy checkpoint (.bin)")->required();
  conv->add_option("output_dir", *out, "HF model directory to write")->required();
  conv->callback([=] {  // uses *from so the lambda keeps the bound string alive
    if (*from != "llama2c") fail("convert", "unknown --from \"" + *from + "\"", "supported: llama2c");
    auto m = load_llama2c(*in);
    m->save_pretrained(*out);
    std::printf("%s\n", nlohmann::json{{"output_dir", *out}, {"model_type", "llama"},
                                       {"num_parameters", m->num_parameters()}}.dump().c_str());
  });
}

}  // namespace prefopt::cli
