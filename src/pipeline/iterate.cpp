// prefopt iterate: the loop for a user's model (see iterate.h).
#include "pipeline/iterate.h"

#include <algorithm>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "data/dataset.h"
#include "dist/dist.h"
#include "model/device.h"
#include "model/lora.h"
#include "model/model.h"
#include "pipeline/demo.h"
#include "pipeline/report.h"
#include "pipeline/run_state.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace prefopt::pipeline {

std::vector<LoopProblem> read_problems(const std::string& path, const std::string& pf, const std::string& af,
                                       const std::string& tmpl, const std::string& sf) {
  if (tmpl.find("{prompt}") == std::string::npos)
    fail("prompt_template", "must contain {prompt}", "e.g. \"{prompt}\\nAnswer: \"");
  std::vector<LoopProblem> out;
  for_each_jsonl(path, [&](const nlohmann::json& row, size_t line) {
    auto get = [&](const std::string& k) {
      const nlohmann::json& v = require_field(row, k.c_str(), path, line);
      if (v.is_number()) return v.dump();
      if (!v.is_string() || v.get<std::string>().empty())
        fail(where(path, line), "field \"" + k + "\" must be a non-empty string", "set prompt_field / answer_field");
      return v.get<std::string>();
    };
    std::string prompt = tmpl;
    prompt.replace(prompt.find("{prompt}"), 8, get(pf));
    std::string id = row.contains("task_id") ? row["task_id"].dump() : row.contains("id") ? row["id"].dump() : std::to_string(line);
    out.push_back({id, prompt, get(af), sf.empty() ? "" : get(sf), {}});
  });
  if (out.empty()) fail(path, "no problems", "one JSON object per line");
  return out;
}

IterateConfig IterateConfig::from_toml(const std::string& path) {
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(fmt::format("{}:{}", path, e.source().begin.line), std::string(e.description()), "fix the TOML syntax");
  }
  const std::vector<std::string> known = {
      "model",         "prompts",      "held_out",          "output_dir",           "grader",
      "method",        "rounds",       "n_samples",         "eval_n",               "max_new_tokens",
      "temperature",   "top_p",        "seed",              "prompt_field",         "answer_field",
      "prompt_template", "prompts_per_round", "max_pairs_per_prompt", "controls", "sft_data",
      "solution_field", "device", "peft_reference", "train"};
  for (auto&& [k, v] : tbl)
    if (std::find(known.begin(), known.end(), std::string(k.str())) == known.end())
      fail(fmt::format("{}:{}", path, v.source().begin.line), "unknown key \"" + std::string(k.str()) + "\"",
           "keys: " + fmt::format("{}", fmt::join(known, ", ")) + " ([train] is a table)");
  auto str = [&](const char* k, const std::string& d) { return tbl[k].value_or(d); };
  auto num = [&](const char* k, double d) { return tbl[k].value_or(d); };
  // A count or seed: a TOML integer in [0, hi] (a float, a string or a value out of range is an error naming
  // file:line, never a silent default or an out-of-range cast).
  auto integer = [&](const char* k, int64_t d, int64_t hi) -> int64_t {
    const toml::node* n = tbl.get(k);
    if (!n) return d;
    const std::string at = fmt::format("{}:{}", path, n->source().begin.line);
    if (!n->is_integer()) fail(at, fmt::format("{} must be an integer", k), fmt::format("e.g. {} = {}", k, d));
    const int64_t v = n->as_integer()->get();
    if (v < 0 || v > hi) fail(at, fmt::format("{} = {} is out of range [0, {}]", k, v, hi), "");
    return v;
  };
  constexpr int64_t kIntMax = 2147483647;
  IterateConfig c;
  c.model = str("model", ""), c.prompts = str("prompts", ""), c.held_out = str("held_out", "");
  if (c.model.empty() || c.prompts.empty() || c.held_out.empty())
    fail(path, "model, prompts and held_out are required", "paths to an HF model directory and two JSONL files");
  LoopOptions& o = c.loop;
  o.out_dir = str("output_dir", "iterate-out");
  o.grader = str("grader", "gsm8k");
  if (o.grader != "gsm8k" && o.grader != "math") fail(path, "grader must be gsm8k or math", "");
  o.method = str("method", "dpo");
  if (o.method != "rft") (void)data_kind_for_method(o.method);
  o.rounds = static_cast<int>(integer("rounds", 2, kIntMax));
  o.n_samples = static_cast<int>(integer("n_samples", 8, kIntMax));
  o.eval_n = static_cast<int>(integer("eval_n", 8, kIntMax));
  o.max_new_tokens = static_cast<int>(integer("max_new_tokens", 256, kIntMax));
  o.temperature = num("temperature", 1.0), o.top_p = num("top_p", 1.0);
  o.seed = static_cast<uint64_t>(integer("seed", 0, INT64_MAX));
  o.prompts_per_round = static_cast<int>(integer("prompts_per_round", 0, kIntMax));
  o.max_pairs_per_prompt = static_cast<int>(integer("max_pairs_per_prompt", 1, kIntMax));
  c.prompt_field = str("prompt_field", "question"), c.answer_field = str("answer_field", "answer");
  c.prompt_template = str("prompt_template", "{prompt}");
  c.sft_data = str("sft_data", ""), c.solution_field = str("solution_field", "answer");
  c.device = str("device", "auto");
  c.peft_reference = str("peft_reference", "base");
  if (c.peft_reference != "base" && c.peft_reference != "previous_round")
    fail(path, "peft_reference must be \"base\" or \"previous_round\"",
         "base: one adapter through the rounds against the base model; previous_round: merge after each round");
  if (auto* arr = tbl["controls"].as_array()) {
    for (auto& v : *arr) {
      auto name = v.value<std::string>();
      if (!name || (*name != "rft" && *name != "sft_more"))
        fail(fmt::format("{}:{}", path, v.source().begin.line), "controls: unknown entry", "use \"rft\" and/or \"sft_more\"");
      if (*name == "sft_more" && c.sft_data.empty())
        fail(fmt::format("{}:{}", path, v.source().begin.line), "sft_more needs sft_data",
             "set sft_data = \"gold.jsonl\" (worked solutions in solution_field)");
      c.controls.push_back(*name);
    }
  }
  o.train.learning_rate = 1e-6;
  load_config_toml(o.train, path, "train");
  o.train.method = o.method == "rft" ? "sft" : o.method;
  o.train.validate();
  o.merge_adapter_each_round = c.peft_reference == "previous_round";
  return c;
}

namespace {

// The configuration a resumed run must share: every key but output_dir, and
// the contents of the prompt files (a file edited in place is a changed run).
nlohmann::json run_config(const IterateConfig& c) {
  const LoopOptions& o = c.loop;
  nlohmann::json j = {{"model", c.model},
                      {"prompts", c.prompts},
                      {"prompts_fnv1a", fnv1a_hex(read_file(c.prompts))},
                      {"held_out", c.held_out},
                      {"held_out_fnv1a", fnv1a_hex(read_file(c.held_out))},
                      {"sft_data", c.sft_data},
                      {"prompt_field", c.prompt_field},
                      {"answer_field", c.answer_field},
                      {"solution_field", c.solution_field},
                      {"prompt_template", c.prompt_template},
                      {"controls", c.controls},
                      {"grader", o.grader},
                      {"method", o.method},
                      {"rounds", o.rounds},
                      {"n_samples", o.n_samples},
                      {"eval_n", o.eval_n},
                      {"max_new_tokens", o.max_new_tokens},
                      {"temperature", o.temperature},
                      {"top_p", o.top_p},
                      {"seed", o.seed},
                      {"prompts_per_round", o.prompts_per_round},
                      {"max_pairs_per_prompt", o.max_pairs_per_prompt},
                      {"peft_reference", c.peft_reference},
                      {"train", o.train.to_json()}};
  if (!c.sft_data.empty()) j["sft_data_fnv1a"] = fnv1a_hex(read_file(c.sft_data));
  return j;
}

// The policy after a finished round: its model files (a full fine-tune, or the
// merged model under peft_reference = previous_round), or the base model plus
// the round's adapter.
std::unique_ptr<CausalLM> load_round(const std::string& base, const std::string& dir, const at::Device& dev,
                                            bool merged) {
  if (!merged && file_exists(dir + "/adapter_config.json")) {
    auto m = CausalLM::from_pretrained(base, dev);
    load_lora(*m, dir);
    return m;
  }
  return CausalLM::from_pretrained(dir, dev);
}

}  // namespace

nlohmann::json run_iterate(const IterateConfig& c, bool resume) {
  LoopOptions o = c.loop;
  dist::init(static_cast<double>(o.train.ddp_timeout));  // under torchrun: ranks split sampling and training
  if (!dist::is_main()) set_log_level(LogLevel::Quiet);
  auto train = read_problems(c.prompts, c.prompt_field, c.answer_field, c.prompt_template);
  auto held = read_problems(c.held_out, c.prompt_field, c.answer_field, c.prompt_template);
  RunState state(o.out_dir, "iterate", run_config(c), resume);
  o.state = &state;
  Tokenizer tok = Tokenizer::load(c.model);
  const at::Device dev = parse_device(c.device, "device");
  auto model = CausalLM::from_pretrained(c.model, dev);
  if (auto e = tok.eos_id()) o.eos_id = *e;
  else if (!model->config().eos_token_ids.empty()) o.eos_id = model->config().eos_token_ids[0];
  const std::string summary_path = o.out_dir + "/summary.json";
  std::vector<nlohmann::json> rounds;
  // A committed round's policy, when a resumed run continues after it.
  const bool merged = o.merge_adapter_each_round;
  o.load_round = [&c, &dev, merged](const std::string& dir) { return load_round(c.model, dir, dev, merged); };
  std::vector<nlohmann::json> controls;
  auto summary = [&] {
    nlohmann::json s = {{"seed", o.seed}, {"method", o.method}, {"tools", false}, {"model", c.model}, {"rounds", rounds}};
    if (!controls.empty()) s["controls"] = controls;
    return s;
  };
  auto write_summary = [&] {
    if (dist::is_main()) atomic_write(summary_path, summary().dump(2) + "\n");
  };
  if (state.done("base")) {
    rounds.push_back(state.entry("base"));
  } else {
    const double t0 = now_seconds();
    test_kill_point("eval", "base");
    auto ev = evaluate(*model, tok, held, o, o.seed + 7);
    if (dist::is_main()) {
      reset_step_dir(o.out_dir + "/base");
      model->save_pretrained(o.out_dir + "/base");
      tok.save_pretrained(o.out_dir + "/base");
    }
    rounds.push_back(round_entry("base", ev, 0, 0, now_seconds() - t0, o.out_dir + "/base"));
    state.commit("base", rounds.back(), o.out_dir + "/base");
    info("base: pass@1 {:.3f}", ev.pass_at_k[1]);
  }
  write_summary();
  for (int r = o.rounds; r >= 1; --r)
    if (state.done("round" + std::to_string(r))) {
      info("iterate: resuming after round{}", r);
      break;
    }
  const nlohmann::json base_problems = nlohmann::json::parse(read_file(o.out_dir + "/base/passk.json"))["per_problem"];
  auto annotate = [&](nlohmann::json& e, const std::string& dir) {
    auto pp = nlohmann::json::parse(read_file(dir + "/" + e["name"].get<std::string>() + "/passk.json"))["per_problem"];
    auto [g, se] = paired_gain(base_problems, pp);
    e["gain_over_base"] = {{"pass_at_1", g}, {"stderr", se}};
  };
  o.on_round = [&](const nlohmann::json& e) {
    rounds.push_back(e);
    annotate(rounds.back(), o.out_dir);
    write_summary();
  };
  run_rounds(model, tok, c.model, train, held, o);

  // Controls from the base model, with the training tokens of each round.
  std::vector<int64_t> tokens;
  for (size_t r = 1; r < rounds.size(); ++r) tokens.push_back(rounds[r].value("train_tokens", int64_t{0}));
  for (const std::string& name : c.controls) {
    auto m = CausalLM::from_pretrained(o.out_dir + "/base", dev);
    m->set_requires_grad(false);
    std::vector<nlohmann::json> cr;
    const std::string dir = o.out_dir + "/controls/" + name;
    if (name == "rft") {
      LoopOptions ro = o;
      ro.out_dir = dir, ro.method = "rft", ro.label = "rft", ro.first_round = 1, ro.on_round = nullptr;
      ro.step_prefix = "controls/rft/";
      ro.round_train_tokens = tokens;
      cr = run_rounds(m, tok, c.model, train, held, ro);
    } else {
      auto gold = read_problems(c.sft_data, c.prompt_field, c.answer_field, c.prompt_template, c.solution_field);
      LoopOptions so = o;
      so.out_dir = dir, so.label = name, so.round_train_tokens = tokens, so.step_prefix = "controls/" + name + "/";
      cr = run_sft_rounds(m, tok, c.model, sft_dataset(tok, gold, o.eos_id, true, c.sft_data), held, so);
    }
    for (auto& e : cr) annotate(e, dir);
    nlohmann::json entry = cr.empty() ? nlohmann::json::object() : cr.back();
    entry["name"] = name;
    entry["rounds"] = cr;
    controls.push_back(entry);
    write_summary();
  }
  if (dist::is_main()) write_report(o.out_dir);
  return summary();
}

}  // namespace prefopt::pipeline
