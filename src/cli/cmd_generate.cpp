// prefopt generate
//   --model DIR --input IDS.jsonl --max-new-tokens N
//       greedy, id-only (the original behaviour): one {"output_ids": [...]} line per input.
//   --model DIR --prompts FILE.jsonl --n 16 --temperature 0.6 --top-p 0.95 --top-k 0
//   --seed 0 --max-new-tokens 256 [--stop STR]... [--chat-template NAME]
//   [--tools python --max-tool-calls 4] [--output OUT.jsonl]
//       sampling: one JSON line per sample, prompt-major:
//       {"prompt_index", "sample_index", "text", "ids" (new tokens only),
//        "finish_reason", "logprob_sum", ...the prompt row's other fields}
//       with --tools also "tool_calls" and "assistant_mask" (1 = sampled, 0 = tool output);
//       the blocks run in the sandbox (run_python_transcript, full per-run isolation).
//   Prompt rows: {"prompt": "text"} or {"text": ...} (encoded with the tokenizer's
//   special tokens, as HF tokenizer(text)), {"messages": [...]} or {"prompt": [messages]}
//   (chat template, add_generation_prompt), or {"input_ids": [...]}.
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "generate/sampler.h"
#include "generate/tool_loop.h"
#include "model/lora.h"
#include "model/device.h"
#include "model/model.h"
#include "sandbox/sandbox.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace prefopt::cli {

std::vector<std::vector<int64_t>> read_id_rows(const std::string& path, int64_t vocab);

namespace {

using json = nlohmann::json;

struct GenerateArgs {
  std::string model, adapter, input, prompts, tokenizer, chat_template, tools, output, device = "auto";
  int max_new = 32;  // the greedy default; sampling defaults to 256 unless given
  bool max_new_given = false;
  int n = 1, top_k = 0, max_tool_calls = 4, batch = 8;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};

struct PromptRow {
  std::vector<int64_t> ids;
  json carry;  // the row's other fields
};

std::vector<ChatMessage> parse_messages(const json& arr, const std::string& file, size_t line) {
  if (!arr.is_array() || arr.empty())
    fail(where(file, line), "\"messages\" must be a non-empty array of {\"role\", \"content\"}");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& m = arr[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      fail(where(file, line), fmt::format("messages[{}] must be {{\"role\": str, \"content\": str}}, found {}", i,
                                          m.dump().substr(0, 80)));
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

std::vector<PromptRow> read_prompts(const std::string& path, const Tokenizer& tok, const ChatTemplate* ct,
                                    int64_t vocab) {
  std::vector<PromptRow> rows;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    PromptRow pr;
    auto messages = [&](const json& arr) {
      if (!ct)
        fail(where(path, line), "a conversational prompt needs a chat template",
             "pass --chat-template NAME (one of: " + fmt::format("{}", fmt::join(ChatTemplate::builtin_names(), ", ")) +
                 ") or use a tokenizer whose tokenizer_config.json has one");
      auto enc = ct->render(tok, parse_messages(arr, path, line), /*add_generation_prompt=*/true);
      pr.ids.assign(enc.ids.begin(), enc.ids.end());
    };
    if (row.contains("input_ids")) {
      const json& ids = row["input_ids"];
      if (!ids.is_array() || ids.empty()) fail(where(path, line), "\"input_ids\" must be a non-empty array of ints");
      for (auto& v : ids) {
        if (!v.is_number_integer()) fail(where(path, line), "\"input_ids\" holds a non-integer");
        pr.ids.push_back(v.get<int64_t>());
      }
    } else if (row.contains("messages")) {
      messages(row["messages"]);
    } else if (row.contains("prompt") && row["prompt"].is_array()) {
      messages(row["prompt"]);  // TRL conversational prompt
    } else if ((row.contains("prompt") && row["prompt"].is_string()) || (row.contains("text") && row["text"].is_string())) {
      const std::string text = row.contains("prompt") ? row["prompt"].get<std::string>() : row["text"].get<std::string>();
      auto e = tok.encode(text, /*add_special_tokens=*/true);
      pr.ids.assign(e.begin(), e.end());
    } else {
      fail(where(path, line), "expected one of \"prompt\" (text or messages), \"text\", \"messages\" or \"input_ids\"",
           "found keys: " + [&] {
             std::string k;
             for (auto it = row.begin(); it != row.end(); ++it) k += (k.empty() ? "" : ", ") + it.key();
             return k;
           }());
    }
    if (pr.ids.empty()) fail(where(path, line), "the prompt encodes to no tokens", "give a non-empty prompt");
    for (int64_t id : pr.ids)
      if (id < 0 || id >= vocab)
        fail(where(path, line), fmt::format("token id {} is outside the model's vocabulary [0, {})", id, vocab),
             "is the tokenizer the model's own? (--tokenizer)");
    for (auto it = row.begin(); it != row.end(); ++it)
      if (it.key() != "input_ids" && it.key() != "attention_mask" && it.key() != "text") pr.carry[it.key()] = it.value();
    rows.push_back(std::move(pr));
  });
  return rows;
}

void run_greedy_ids(const GenerateArgs& a) {
  auto m = CausalLM::from_pretrained(a.model, parse_device(a.device));
  if (!a.adapter.empty()) load_lora(*m, a.adapter);
  auto rows = read_id_rows(a.input, m->config().vocab_size);
  for (auto& r : rows) {
    auto out = greedy_generate(*m, {r}, a.max_new, m->config().eos_token_ids)[0];
    std::printf("%s\n", json{{"output_ids", out}}.dump().c_str());
  }
}

void run_sampling(const GenerateArgs& a) {
  auto m = CausalLM::from_pretrained(a.model, parse_device(a.device));
  if (!a.adapter.empty()) load_lora(*m, a.adapter);
  Tokenizer tok = Tokenizer::load(a.tokenizer.empty() ? a.model : a.tokenizer);
  std::optional<ChatTemplate> ct;
  if (!a.chat_template.empty()) ct = ChatTemplate::from_arg(a.chat_template);
  else if (!tok.chat_template_text().empty()) ct = ChatTemplate::from_tokenizer(tok);
  auto prompts = read_prompts(a.prompts, tok, ct ? &*ct : nullptr, m->config().vocab_size);

  SamplingParams sp;
  sp.temperature = a.temperature, sp.top_k = a.top_k, sp.top_p = a.top_p, sp.seed = a.seed;
  sp.max_new_tokens = a.max_new_given ? a.max_new : 256;
  sp.eos_ids = model_eos_ids(a.model, *m, &tok);
  sp.stop_strings = a.stop, sp.n = a.n;
  const bool tools = !a.tools.empty();
  if (tools && a.tools != "python")
    fail("--tools", fmt::format("unknown tool '{}'", a.tools), "the only tool is: python");
  if (tools) info("generate: python blocks run in the sandbox; isolation: {}", isolation_level());

  std::unique_ptr<AtomicFile> file;
  if (!a.output.empty()) file = std::make_unique<AtomicFile>(a.output);
  auto emit = [&](const json& j) {
    std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    if (file) file->write(line);
    else std::fwrite(line.data(), 1, line.size(), stdout);
  };
  const long total = static_cast<long>(prompts.size()) * a.n;
  Progress prog("generate", total);
  long done = 0;
  const size_t B = static_cast<size_t>(std::max(1, a.batch));
  for (size_t b0 = 0; b0 < prompts.size(); b0 += B) {
    const size_t b1 = std::min(prompts.size(), b0 + B);
    std::vector<std::vector<int64_t>> ids;
    for (size_t i = b0; i < b1; ++i) ids.push_back(prompts[i].ids);
    SamplingParams bsp = sp;
    for (size_t i = b0; i < b1; ++i) bsp.stream_ids.push_back(i);  // streams follow the file, not the batching
    long tokens = 0;
    if (!tools) {
      auto got = sample(*m, &tok, ids, bsp);
      for (size_t i = b0; i < b1; ++i)
        for (int j = 0; j < a.n; ++j) {
          const Sample& s = got[i - b0][j];
          json o = prompts[i].carry.is_null() ? json::object() : prompts[i].carry;
          o["prompt_index"] = i, o["sample_index"] = j, o["text"] = s.text, o["ids"] = s.ids;
          o["finish_reason"] = s.finish_reason, o["logprob_sum"] = s.logprob_sum;
          emit(o);
          tokens += static_cast<long>(s.ids.size());
        }
    } else {
      std::vector<std::vector<int64_t>> rows;
      for (auto& p : ids)
        for (int j = 0; j < a.n; ++j) rows.push_back(p);
      ToolLoopParams tp;
      tp.max_tool_calls = a.max_tool_calls, tp.max_new_tokens = sp.max_new_tokens;
      auto tr = run_tool_loop(rows, make_sampling_policy(*m, tok, bsp),
                              [](const std::string& prog) { return run_python_transcript(prog); }, tok, tp);
      for (size_t r = 0; r < tr.size(); ++r) {
        const size_t i = b0 + r / a.n;
        const int j = static_cast<int>(r % a.n);
        json o = prompts[i].carry.is_null() ? json::object() : prompts[i].carry;
        std::vector<int> mask;
        for (auto role : tr[r].roles) mask.push_back(role == static_cast<uint8_t>(Role::Assistant));
        o["prompt_index"] = i, o["sample_index"] = j, o["text"] = tr[r].text, o["ids"] = tr[r].ids;
        o["finish_reason"] = tr[r].finish_reason, o["tool_calls"] = tr[r].tool_calls, o["assistant_mask"] = mask;
        emit(o);
        tokens += static_cast<long>(tr[r].ids.size());
      }
    }
    done += static_cast<long>(b1 - b0) * a.n;
    prog.update(done, "", tokens);
  }
  prog.finish();
  if (file) file->commit();
}

}  // namespace

void register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Sample continuations (--prompts), or greedy ids (--input)");
  cmd->add_option("--model", a->model, "HF model directory")->required();
  cmd->add_option("--adapter", a->adapter, "a LoRA adapter directory (PEFT format) applied to --model");
  auto* in = cmd->add_option("--input", a->input, "JSONL with {\"input_ids\": [...]}: greedy, id-only output");
  auto* pr = cmd->add_option("--prompts", a->prompts,
                             "JSONL prompts: {\"prompt\"|\"text\": str}, {\"messages\": [...]} or {\"input_ids\": [...]}");
  in->excludes(pr);
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer path (default: the model directory)");
  cmd->add_option("--chat-template", a->chat_template, "built-in chat template for messages (default: the tokenizer's)");
  cmd->add_option("--n", a->n, "samples per prompt (one shared prompt prefill)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", a->temperature, "0 = greedy")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", a->top_k, "0 = off")->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--top-p", a->top_p, "1 = off")->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--seed", a->seed, "sampling seed (portable: same samples on every machine)");
  cmd->add_option("--max-new-tokens", a->max_new, "new tokens per sample (32 for --input, 256 for --prompts)")
      ->each([a](const std::string&) { a->max_new_given = true; });
  cmd->add_option("--stop", a->stop, "stop string (repeatable); the text is cut before it");
  cmd->add_option("--tools", a->tools, "python: run closed ```python blocks and append ```output");
  cmd->add_option("--max-tool-calls", a->max_tool_calls, "tool calls per trajectory");
  cmd->add_option("--batch-size", a->batch, "prompts per batch (each with its n samples)");
  cmd->add_option("--output", a->output, "write the JSONL here (atomically) instead of stdout");
  cmd->add_option("--device", a->device, kDeviceHelp);
  cmd->callback([a] {
    if (!a->input.empty()) return run_greedy_ids(*a);
    if (a->prompts.empty())
      fail("prefopt generate", "nothing to generate from", "give --prompts FILE.jsonl (sampling) or --input IDS.jsonl");
    run_sampling(*a);
  });
}

}  // namespace prefopt::cli
