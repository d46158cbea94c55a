// prefopt demo: the whole verifiable preference-learning loop on a built-in
// task, offline, with no user files (issue #6): seeded arithmetic word
// problems (pipeline/task.h) -> a byte-level BPE tokenizer trained on them ->
// a tiny Llama created from a config -> SFT on worked solutions (the trainer,
// method sft) -> pass@k on held-out problems -> `rounds` x (sample n per
// training prompt -> grade -> pairs -> DPO (or --method kto|bco|tpo|orpo|simpo|cpo)
// -> pass@k) -> summary.json and report.md with SVG pictures.
// The loop itself is pipeline/loop.h; the report pipeline/report.h.
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "data/dataset.h"
#include "model/model.h"
#include "model/runtime.h"
#include "pipeline/loop.h"
#include "pipeline/report.h"
#include "pipeline/task.h"
#include "generate/tool_loop.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace prefopt::cli {
namespace {

struct DemoArgs {
  std::string out = "demo-out", method = "dpo";
  uint64_t seed = 0;
  bool quick = false;
  int rounds = 2, sft_steps = 0, n_samples = 8, eval_n = 8;
  double learning_rate = 0, beta = 0.1, rpo_alpha = 1.0;
  std::string tools, sft_from;
  bool mask_tools = true;
};

void run_demo(const DemoArgs& a) {
  const double t0 = now_seconds();
  configure_threads(kRecommendedAtenThreads);
  const std::string& out = a.out;
  if (!a.tools.empty() && a.tools != "python") fail("--tools", "unknown tool \"" + a.tools + "\"", "the only tool is python");
  const bool tools = !a.tools.empty();
  make_dirs(out);
  // Sizes: the full run fits in ~10 minutes on 2 cores, --quick in ~1.
  const size_t n_train = a.quick ? 300 : 3000, n_held = a.quick ? 32 : 300, n_pref = a.quick ? 48 : 512;
  const int sft_steps = a.sft_steps > 0 ? a.sft_steps : (a.quick ? 60 : 5000);
  auto splits = pipeline::make_task(a.seed, n_train, n_held);
  std::vector<pipeline::LoopProblem> train, held, pref;
  for (size_t i = 0; i < splits.train.size(); ++i) {
    auto& t = splits.train[i];
    train.push_back({"train-" + std::to_string(i), pipeline::task_prompt(t), std::to_string(t.answer), t.solution, {}});
    if (tools)  // the worked solution calls Python: code, its printed output (a tool turn), the answer
      train.back().gold_segments = {{pipeline::tool_solution_code(t), false},
                                    {observation_text(std::to_string(t.answer)), true},
                                    {"#### " + std::to_string(t.answer), false}};
  }
  for (size_t i = 0; i < splits.held_out.size(); ++i) {
    auto& t = splits.held_out[i];
    held.push_back({"held-" + std::to_string(i), pipeline::task_prompt(t), std::to_string(t.answer), t.solution, {}});
  }
  pref.assign(train.begin(), train.begin() + std::min(train.size(), n_pref));

  std::vector<std::string> corpus;
  for (auto& p : train) {
    std::string text = p.prompt + p.gold_solution;
    for (auto& seg : p.gold_segments) text += seg.first;
    corpus.push_back(text);
  }
  info("demo: training a byte-level BPE tokenizer on {} problems", corpus.size());
  Tokenizer tok = train_bpe(corpus, 400, {"<|endoftext|>"}, /*split_digits=*/true);
  const int32_t eos = *tok.token_to_id("<|endoftext|>");
  const std::string tok_dir = out + "/tokenizer";
  tok.save_pretrained(tok_dir);
  auto cfg = llama_config(tok.vocab_size(), 128, 3, 4, 2, 352, 256);
  cfg.eos_token_ids = {eos};
  auto model = CausalLM::from_config(cfg, a.seed);
  info("demo: tiny Llama from config, {} parameters, vocab {}", model->num_parameters(), tok.vocab_size());

  // SFT on the worked solutions: prompt masked, solution + EOS scored.
  Dataset sft;
  sft.path = out + "/sft-data";
  sft.kind = DataKind::Sft;
  for (auto& p : train) {
    Example ex;
    ex.line = sft.rows.size() + 1;
    auto e = tok.encode(p.prompt);
    ex.prompt.assign(e.begin(), e.end());
    ex.completions.push_back(pipeline::gold_completion(tok, p, eos, a.mask_tools));
    sft.rows.push_back(std::move(ex));
  }
  sft.hash = fmt::format("demo-sft-{}-{}", a.seed, n_train);
  const double t_sft = now_seconds();
  TrainConfig sc;
  sc.method = "sft", sc.output_dir = out + "/sft", sc.learning_rate = 3e-3, sc.per_device_train_batch_size = 16;
  sc.max_steps = sft_steps, sc.lr_scheduler_type = "cosine", sc.warmup_ratio = 0.05, sc.logging_steps = 10;
  sc.save_steps = 0, sc.seed = static_cast<int64_t>(a.seed), sc.max_grad_norm = 1.0;
  remove_all(sc.output_dir);
  TrainSummary ss;
  if (!a.sft_from.empty()) {
    // Reuse the SFT stage of an earlier demo with the same seed and task (the
    // experiments compare objectives from one SFT model).
    const std::string src = a.sft_from + "/sft";
    auto prev = nlohmann::json::parse(read_file(a.sft_from + "/summary.json"));
    PREFOPT_CHECK(prev.value("seed", uint64_t{0}) == a.seed && prev.value("tools", false) == tools &&
                      prev.value("quick", false) == a.quick,
                  "--sft-from {}: made with another seed, --tools or --quick setting", a.sft_from);
    model = CausalLM::from_pretrained(src);
    PREFOPT_CHECK(Tokenizer::load(src).encode(train[0].prompt) == tok.encode(train[0].prompt),
                  "--sft-from {}: its tokenizer differs from this run's", a.sft_from);
    make_dirs(sc.output_dir);
    for (const char* f : {"metrics.jsonl"})
      if (file_exists(src + "/" + f)) atomic_write(sc.output_dir + "/" + f, read_file(src + "/" + f));
    model->save_pretrained(sc.output_dir);
    tok.save_pretrained(sc.output_dir);
    const auto& r0 = prev["rounds"][0];
    ss.steps = r0.value("train_steps", int64_t{0});
    ss.first_loss = r0.value("sft_loss_first", 0.0), ss.last_loss = r0.value("sft_loss_last", 0.0);
    info("demo: SFT model taken from {}", src);
  } else {
    Trainer t(sc, *model, nullptr, std::move(sft), std::nullopt, tok_dir);
    ss = t.train();
  }
  model->set_requires_grad(false);

  pipeline::LoopOptions o;
  o.out_dir = out, o.seed = a.seed, o.method = a.method, o.rounds = a.rounds, o.grader = "gsm8k";
  o.n_samples = a.n_samples, o.eval_n = a.eval_n, o.max_new_tokens = tools ? 64 : 48, o.temperature = 1.0, o.eos_id = eos;
  o.tools = tools, o.max_tool_calls = 2;
  o.train.mask_tool_observations = a.mask_tools;
  // Preference rounds: the reference is the previous round's model; NLL on
  // chosen (RPO) keeps the likelihood of correct answers from collapsing
  // (see docs/experiments.md and ../shared/design/DEMO-NOTES.md).
  TrainConfig& tc = o.train;
  tc.learning_rate = a.learning_rate > 0 ? a.learning_rate : 1e-4;
  tc.beta = a.beta, tc.per_device_train_batch_size = 16, tc.num_train_epochs = 2, tc.max_steps = -1;
  tc.lr_scheduler_type = "constant_with_warmup", tc.warmup_ratio = 0.1, tc.logging_steps = 1;
  tc.max_length = 256, tc.max_prompt_length = 192;
  if (a.method == "dpo") tc.rpo_alpha = a.rpo_alpha;
  if (a.method == "orpo") tc.beta = 0.1;
  if (a.method == "simpo") tc.beta = 2.0, tc.simpo_gamma = 0.5, tc.cpo_alpha = a.rpo_alpha;

  auto ev0 = pipeline::evaluate(*model, tok, held, o, a.seed + 7);
  std::vector<nlohmann::json> rounds;
  rounds.push_back(pipeline::round_entry("sft", ev0, 0, ss.steps, now_seconds() - t_sft, out + "/sft"));
  rounds.back()["sft_loss_first"] = ss.first_loss;
  rounds.back()["sft_loss_last"] = ss.last_loss;
  info("sft: pass@1 {:.3f}, greedy accuracy {:.3f}", ev0.pass_at_k[1], ev0.greedy_accuracy);
  auto more = pipeline::run_rounds(model, tok, tok_dir, pref, held, o);
  rounds.insert(rounds.end(), more.begin(), more.end());

  // The saved SFT model and tokenizer load back with identical logits.
  {
    auto re = CausalLM::from_pretrained(out + "/" + rounds.back()["name"].get<std::string>());
    Tokenizer tok2 = Tokenizer::load(out + "/sft");
    at::NoGradGuard ng;
    auto e = tok.encode(held[0].prompt);
    auto probe = at::tensor(std::vector<int64_t>(e.begin(), e.end()), at::kLong).view({1, -1});
    auto pm = at::ones_like(probe);
    PREFOPT_CHECK(at::equal(model->forward(probe, pm), re->forward(probe, pm)) && tok2.encode(held[0].prompt) == e,
                  "demo: the reloaded model or tokenizer differs from the saved one");
  }
  const double secs = now_seconds() - t0;
  nlohmann::json summary = {{"seed", a.seed}, {"method", a.method}, {"tools", tools}, {"mask_tool_observations", a.mask_tools}, {"quick", a.quick},
                            {"seconds", secs}, {"rounds", rounds}};
  atomic_write(out + "/summary.json", summary.dump(2) + "\n");
  std::string report = pipeline::write_report(out);
  const double p0 = rounds.front()["pass_at_k"]["1"].get<double>();
  const double p1 = rounds.back()["pass_at_k"]["1"].get<double>();
  const double se0 = rounds.front().value("pass_at_1_stderr", 0.0), se1 = rounds.back().value("pass_at_1_stderr", 0.0);
  std::printf("prefopt demo (seed %llu, method %s%s): held-out pass@1 %.1f%% (+-%.1f) after SFT -> %.1f%% (+-%.1f) after "
              "%d round(s) (%+.1f points; n=%d samples at T=1.0 on %zu problems; +- one standard error over problems); "
              "%.0f s. Report: %s\n",
              static_cast<unsigned long long>(a.seed), a.method.c_str(), tools ? ", tools python" : "", 100 * p0,
              100 * se0, 100 * p1, 100 * se1, a.rounds, 100 * (p1 - p0), a.eval_n, held.size(), secs, report.c_str());
  for (auto& r : rounds)
    std::printf("  %-7s pass@1 %.3f  pass@max-k %.3f  greedy %.3f  rows %lld  steps %lld\n",
                r["name"].get<std::string>().c_str(), r["pass_at_k"]["1"].get<double>(),
                r["pass_at_k"][std::to_string(a.eval_n)].get<double>(), r["greedy_accuracy"].get<double>(),
                static_cast<long long>(r["pairs"].get<int64_t>()), static_cast<long long>(r["train_steps"].get<int64_t>()));
}


// ---------------------------------------------------------------- iterate
// prefopt iterate --config F.toml [--resume]: the same loop for a user's HF
// model and prompts. Top-level keys (see docs/experiments.md):
//   model, prompts, held_out, output_dir, grader (gsm8k | math), method,
//   rounds, n_samples, eval_n, max_new_tokens, temperature, top_p, seed,
//   prompt_field, answer_field, prompt_template ("{prompt}" is replaced);
//   [train] holds `prefopt train` keys (TRL names) for the preference rounds.
struct IterateArgs {
  std::string config;
  bool resume = false;
};

std::vector<pipeline::LoopProblem> read_problems(const std::string& path, const std::string& pf, const std::string& af,
                                                 const std::string& tmpl) {
  std::vector<pipeline::LoopProblem> out;
  for_each_jsonl(path, [&](const json& row, size_t line) {
    auto get = [&](const std::string& k) {
      const json& v = require_field(row, k.c_str(), path, line);
      if (v.is_number()) return v.dump();
      if (!v.is_string() || v.get<std::string>().empty())
        fail(where(path, line), "field \"" + k + "\" must be a non-empty string", "set prompt_field / answer_field");
      return v.get<std::string>();
    };
    std::string prompt = tmpl;
    size_t at = prompt.find("{prompt}");
    if (at == std::string::npos) fail("prompt_template", "must contain {prompt}", "e.g. \"{prompt}\\nAnswer: \"");
    prompt.replace(at, 8, get(pf));
    std::string id = row.contains("task_id") ? row["task_id"].dump() : row.contains("id") ? row["id"].dump() : std::to_string(line);
    out.push_back({id, prompt, get(af), ""});
  });
  if (out.empty()) fail(path, "no problems", "one JSON object per line");
  return out;
}

void run_iterate(const IterateArgs& a) {
  toml::table tbl;
  try {
    tbl = toml::parse_file(a.config);
  } catch (const toml::parse_error& e) {
    fail(fmt::format("{}:{}", a.config, e.source().begin.line), std::string(e.description()), "fix the TOML syntax");
  }
  const std::vector<std::string> known = {"model", "prompts", "held_out", "output_dir", "grader", "method", "rounds",
                                          "n_samples", "eval_n", "max_new_tokens", "temperature", "top_p", "seed",
                                          "prompt_field", "answer_field", "prompt_template", "train"};
  for (auto&& [k, v] : tbl)
    if (std::find(known.begin(), known.end(), std::string(k.str())) == known.end())
      fail(fmt::format("{}:{}", a.config, v.source().begin.line), "unknown key \"" + std::string(k.str()) + "\"",
           "keys: model, prompts, held_out, output_dir, grader, method, rounds, n_samples, eval_n, max_new_tokens, "
           "temperature, top_p, seed, prompt_field, answer_field, prompt_template, [train]");
  auto str = [&](const char* k, const std::string& d) { return tbl[k].value_or(d); };
  auto num = [&](const char* k, double d) { return tbl[k].value_or(d); };
  const std::string model_dir = str("model", ""), prompts = str("prompts", ""), held_path = str("held_out", "");
  if (model_dir.empty() || prompts.empty() || held_path.empty())
    fail(a.config, "model, prompts and held_out are required", "paths to an HF model directory and two JSONL files");
  pipeline::LoopOptions o;
  o.out_dir = str("output_dir", "iterate-out");
  o.grader = str("grader", "gsm8k");
  if (o.grader != "gsm8k" && o.grader != "math") fail(a.config, "grader must be gsm8k or math", "");
  o.method = str("method", "dpo");
  (void)data_kind_for_method(o.method);
  o.rounds = static_cast<int>(num("rounds", 2));
  o.n_samples = static_cast<int>(num("n_samples", 8));
  o.eval_n = static_cast<int>(num("eval_n", 8));
  o.max_new_tokens = static_cast<int>(num("max_new_tokens", 256));
  o.temperature = num("temperature", 1.0), o.top_p = num("top_p", 1.0);
  o.seed = static_cast<uint64_t>(num("seed", 0));
  const std::string pf = str("prompt_field", "question"), af = str("answer_field", "answer"),
                    tmpl = str("prompt_template", "{prompt}");
  o.train.learning_rate = 1e-6;
  load_config_toml(o.train, a.config, "train");
  o.train.method = o.method;
  o.train.validate();
  auto train = read_problems(prompts, pf, af, tmpl), held = read_problems(held_path, pf, af, tmpl);
  Tokenizer tok = Tokenizer::load(model_dir);
  auto model = CausalLM::from_pretrained(model_dir);
  if (auto e = tok.eos_id()) o.eos_id = *e;
  else if (!model->config().eos_token_ids.empty()) o.eos_id = model->config().eos_token_ids[0];
  make_dirs(o.out_dir);
  const std::string summary_path = o.out_dir + "/summary.json";
  std::vector<nlohmann::json> rounds;
  if (a.resume && file_exists(summary_path)) {
    auto s = nlohmann::json::parse(read_file(summary_path));
    for (auto& r : s["rounds"]) rounds.push_back(r);
    if (!rounds.empty()) {
      const std::string last = rounds.back()["name"].get<std::string>();
      if (last != "base") model = CausalLM::from_pretrained(o.out_dir + "/" + last);
      o.first_round = static_cast<int>(rounds.size());  // base + k rounds done -> next is k+1
      info("iterate: resuming after {} ({} round(s) done)", last, rounds.size() - 1);
    }
  }
  auto write_summary = [&] {
    nlohmann::json s = {{"seed", o.seed}, {"method", o.method}, {"tools", false}, {"model", model_dir},
                        {"rounds", rounds}};
    atomic_write(summary_path, s.dump(2) + "\n");
  };
  if (rounds.empty()) {
    const double t0 = now_seconds();
    auto ev = pipeline::evaluate(*model, tok, held, o, o.seed + 7);
    model->save_pretrained(o.out_dir + "/base");
    tok.save_pretrained(o.out_dir + "/base");
    rounds.push_back(pipeline::round_entry("base", ev, 0, 0, now_seconds() - t0, o.out_dir + "/base"));
    write_summary();
    info("base: pass@1 {:.3f}", ev.pass_at_k[1]);
  }
  o.on_round = [&](const nlohmann::json& e) {
    rounds.push_back(e);
    write_summary();
  };
  pipeline::run_rounds(model, tok, model_dir, train, held, o);
  std::string report = pipeline::write_report(o.out_dir);
  std::printf("prefopt iterate: pass@1 %.3f (base) -> %.3f (%s); report %s\n",
              rounds.front()["pass_at_k"]["1"].get<double>(), rounds.back()["pass_at_k"]["1"].get<double>(),
              rounds.back()["name"].get<std::string>().c_str(), report.c_str());
}

}  // namespace

void register_pipeline(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand("demo", "The verifiable preference-learning loop on a built-in task: SFT, then "
                                         "rounds of sample -> grade -> pairs -> train -> pass@k");
  cmd->add_option("--output-dir", a->out, "where models, metrics, pairs, summary.json and report.md go");
  cmd->add_option("--method", a->method, "dpo | kto | bco | tpo | orpo | simpo | cpo")
      ->check(CLI::IsMember({"dpo", "kto", "bco", "tpo", "orpo", "simpo", "cpo"}));
  cmd->add_option("--seed", a->seed, "seed of the task, the model, the data order and the sampling");
  cmd->add_option("--rounds", a->rounds, "preference rounds after SFT");
  cmd->add_option("--sft-from", a->sft_from, "reuse DIR/sft of an earlier demo (same seed) instead of training SFT");
  cmd->add_option("--sft-steps", a->sft_steps, "SFT steps (default 5000, --quick 60)");
  cmd->add_option("--n", a->n_samples, "samples per training prompt in each round");
  cmd->add_option("--eval-n", a->eval_n, "samples per held-out problem for pass@k (k = 1, 2, 4, ..., eval-n)");
  cmd->add_option("--learning_rate", a->learning_rate, "preference learning rate (default 1e-4)");
  cmd->add_option("--beta", a->beta, "preference beta");
  cmd->add_option("--rpo_alpha", a->rpo_alpha, "NLL-on-chosen weight for dpo (0 = plain DPO)");
  cmd->add_flag("--quick", a->quick, "a short run (~1 minute)");
  cmd->add_option("--tools", a->tools, "python: worked solutions and samples call Python (the tool-call loop, "
                                       "code in the sandbox); trains M-DPO / M-KTO");
  cmd->add_option("--mask-tool-observations", a->mask_tools,
                  "true (M-DPO: tool outputs never count in the loss) or false (for the comparison)");
  cmd->callback([a] { run_demo(*a); });

  auto cmp = std::make_shared<std::pair<std::string, std::vector<std::string>>>();
  auto* cr = app.add_subcommand("compare-runs", "Markdown table (stdout) and an SVG of pass@k curves comparing demo "
                                                "or iterate output directories: LABEL=DIR ...");
  cr->add_option("--svg", cmp->first, "where the pass@k picture goes")->required();
  cr->add_option("runs", cmp->second, "LABEL=DIR pairs")->required();
  cr->callback([cmp] {
    std::vector<std::pair<std::string, std::string>> ld;
    for (auto& r : cmp->second) {
      auto eq = r.find('=');
      if (eq == std::string::npos || eq == 0) fail(r, "expected LABEL=DIR", "e.g. dpo=runs/dpo");
      ld.push_back({r.substr(0, eq), r.substr(eq + 1)});
    }
    std::printf("%s", pipeline::compare_runs_markdown(ld, cmp->first).c_str());
  });

  auto ia = std::make_shared<IterateArgs>();
  auto* it = app.add_subcommand("iterate", "The loop for your own HF model and prompts (GSM8K / MATH JSONL): rounds of "
                                           "sample -> grade -> pairs -> train -> pass@k, resumable per round");
  it->add_option("--config", ia->config, "a TOML file (see docs/experiments.md)")->required();
  it->add_flag("--resume", ia->resume, "continue after the last finished round in output_dir");
  it->callback([ia] { run_iterate(*ia); });
}

}  // namespace prefopt::cli
