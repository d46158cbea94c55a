// prefopt demo: the recipe (see demo.h for the set-up and its reasons).
#include "pipeline/demo.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/stats.h"
#include "data/dataset.h"
#include "dist/dist.h"
#include "generate/tool_loop.h"
#include "model/device.h"
#include "model/model.h"
#include "model/runtime.h"
#include "pipeline/loop.h"
#include "pipeline/report.h"
#include "pipeline/run_state.h"
#include "pipeline/task.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace prefopt::pipeline {
namespace {

// Every size of the run, defaults filled in (quick or full) and user values applied.
struct Setup {
  int rounds, sft_steps, gold, answer_only_sft, pool, prompts_per_round, held_out, max_pairs, truncate_rejected;
  double learning_rate, epochs;

  nlohmann::json to_json() const {
    return {{"rounds", rounds},       {"sft_steps", sft_steps}, {"gold", gold},
            {"answer_only_sft", answer_only_sft}, {"pool", pool}, {"prompts_per_round", prompts_per_round},
            {"held_out", held_out},   {"max_pairs", max_pairs}, {"truncate_rejected", truncate_rejected != 0},
            {"learning_rate", learning_rate},
            {"epochs", epochs}};
  }
};

Setup resolve(const DemoOptions& o) {
  // Full: measured on 2 cores in about 6 minutes (docs/experiments.md has the sweeps behind these values).
  Setup s = o.quick ? Setup{2, 60, 200, 0, 400, 48, 32, 2, 1, 1e-4, 1.0}
                    : Setup{4, 1500, 400, 0, 8000, 1536, 300, 4, 1, 3e-4, 2.0};
  auto take = [](int v, int& d) { if (v >= 0) d = v; };
  take(o.rounds, s.rounds), take(o.sft_steps, s.sft_steps), take(o.gold, s.gold);
  take(o.answer_only_sft, s.answer_only_sft), take(o.pool, s.pool), take(o.prompts_per_round, s.prompts_per_round);
  take(o.held_out, s.held_out), take(o.max_pairs, s.max_pairs), take(o.truncate_rejected, s.truncate_rejected);
  if (o.learning_rate > 0) s.learning_rate = o.learning_rate;
  if (o.epochs > 0) s.epochs = o.epochs;
  if (s.gold + s.answer_only_sft < 2) fail("--gold", "the SFT set needs at least 2 problems", "raise --gold");
  if (s.held_out < 2) fail("--held-out", "at least 2 held-out problems are needed", "raise --held-out");
  return s;
}

LoopProblem problem(const std::string& id, const TaskProblem& t) {
  return {id, task_prompt(t), std::to_string(t.answer), t.solution, {}};
}

// The rounds' training config (TRL names): DPO + NLL on chosen (RPO), warmup, constant rate.
TrainConfig round_config(const DemoOptions& o, const Setup& s) {
  TrainConfig tc;
  tc.learning_rate = s.learning_rate;
  tc.beta = o.beta, tc.per_device_train_batch_size = 16, tc.num_train_epochs = s.epochs, tc.max_steps = -1;
  tc.lr_scheduler_type = "constant_with_warmup", tc.warmup_ratio = 0.1, tc.logging_steps = 1;
  tc.max_length = 256, tc.max_prompt_length = 192, tc.max_grad_norm = 1.0;
  tc.mask_tool_observations = o.mask_tool_observations;
  if (o.method == "dpo") tc.rpo_alpha = o.rpo_alpha;
  if (o.method == "simpo") tc.beta = 2.0, tc.simpo_gamma = 0.5, tc.cpo_alpha = o.rpo_alpha;
  return tc;
}

// A control arm's summary entry: its last round, with the rounds inside.
nlohmann::json control_entry(const std::string& name, const std::vector<nlohmann::json>& rounds) {
  nlohmann::json e = rounds.back();
  e["name"] = name;
  int64_t tokens = 0;
  for (auto& r : rounds) tokens += r.value("train_tokens", int64_t{0});
  e["train_tokens"] = tokens;
  e["rounds"] = rounds;
  return e;
}

nlohmann::json read_per_problem(const std::string& dir) {
  return nlohmann::json::parse(read_file(dir + "/passk.json"))["per_problem"];
}

}  // namespace

std::pair<double, double> paired_gain(const nlohmann::json& a, const nlohmann::json& b) {
  std::vector<double> d;
  for (auto& [id, ca] : a.items()) {
    if (!b.contains(id)) fail("paired_gain", "problem \"" + id + "\" is missing from the second evaluation",
                              "compare evaluations of the same held-out problems");
    const auto& cb = b[id];
    d.push_back(cb["c"].get<double>() / cb["n"].get<double>() - ca["c"].get<double>() / ca["n"].get<double>());
  }
  return mean_and_stderr(d);
}

nlohmann::json run_demo(const DemoOptions& o) {
  const at::Device dev = parse_device(o.device);  // a bad --device fails before any work
  const double t0 = now_seconds();
  configure_threads(kRecommendedAtenThreads);
  dist::init(static_cast<double>(TrainConfig{}.ddp_timeout));  // under torchrun: ranks split sampling and training
  if (!dist::is_main()) set_log_level(LogLevel::Quiet);
  // The demo's matrices are tiny ([16 x ~45, 128] x [128, 352]): OpenBLAS's threads cost more than
  // they give. Measured here: 1500 SFT steps ran at ~12 steps/s on one BLAS thread and ~4.5 steps/s
  // on two while other work shared the 2 cores. A user's OPENBLAS_NUM_THREADS is respected.
  if (!std::getenv("OPENBLAS_NUM_THREADS")) cpu::set_blas_num_threads(1);
  if (!o.tools.empty() && o.tools != "python") fail("--tools", "unknown tool \"" + o.tools + "\"", "the only tool is python");
  const bool tools = !o.tools.empty();
  const Setup s = resolve(o);
  const std::string& out = o.output_dir;
  // The configuration a resumed run must share: every resolved setting but the output directory.
  nlohmann::json config = {{"seed", o.seed},         {"method", o.method},       {"tools", tools},
                           {"mask_tool_observations", o.mask_tool_observations}, {"n_samples", o.n_samples},
                           {"eval_n", o.eval_n},     {"beta", o.beta},           {"rpo_alpha", o.rpo_alpha},
                           {"controls", o.controls}, {"sft_from", o.sft_from}};
  const nlohmann::json setup = s.to_json();
  for (auto& [k, v] : setup.items()) config[k] = v;
  RunState state(out, "demo", config, o.resume);

  // The task: gold (worked) | answer-only demonstrations | answer-only pool, and held-out problems.
  const size_t n_sup = static_cast<size_t>(s.gold + s.answer_only_sft);
  auto splits = make_task(o.seed, n_sup + static_cast<size_t>(s.pool), static_cast<size_t>(s.held_out), small_numbers());
  std::vector<LoopProblem> demos, pool, held;
  for (size_t i = 0; i < splits.train.size(); ++i) {
    const TaskProblem& t = splits.train[i];
    LoopProblem p = problem("train-" + std::to_string(i), t);
    if (i < static_cast<size_t>(s.gold)) {
      if (tools)  // the worked solution calls Python: code, its printed output (a tool turn), the answer
        p.gold_segments = {{tool_solution_code(t), false},
                           {observation_text(std::to_string(t.answer)), true},
                           {"#### " + std::to_string(t.answer), false}};
      demos.push_back(std::move(p));
    } else if (i < n_sup) {
      p.gold_solution = "#### " + std::to_string(t.answer);  // an answer-only demonstration
      demos.push_back(std::move(p));
    } else {
      p.gold_solution.clear();  // the pool: only the final answer is known
      pool.push_back(std::move(p));
    }
  }
  for (size_t i = 0; i < splits.held_out.size(); ++i) {
    LoopProblem p = problem("held-" + std::to_string(i), splits.held_out[i]);
    p.gold_solution.clear();
    held.push_back(std::move(p));
  }

  // Tokenizer on the supervised text and the pool's questions.
  std::vector<std::string> corpus;
  for (auto& p : demos) {
    std::string text = p.prompt + p.gold_solution;
    for (auto& seg : p.gold_segments) text += seg.first;
    corpus.push_back(text);
  }
  for (auto& p : pool) corpus.push_back(p.prompt);
  info("demo: training a byte-level BPE tokenizer on {} texts", corpus.size());
  Tokenizer tok = train_bpe(corpus, 400, {"<|endoftext|>"}, /*split_digits=*/true);
  const int32_t eos = *tok.token_to_id("<|endoftext|>");
  const std::string tok_dir = out + "/tokenizer";
  if (dist::is_main()) tok.save_pretrained(tok_dir);
  auto cfg = llama_config(tok.vocab_size(), 128, 3, 4, 2, 352, 256);
  cfg.eos_token_ids = {eos};
  auto model = CausalLM::from_config(cfg, o.seed, dev);
  info("demo: tiny Llama from config, {} parameters, vocab {}; SFT on {} worked solutions + {} answer-only "
       "demonstrations, rounds on a pool of {} answer-only prompts",
       model->num_parameters(), tok.vocab_size(), s.gold, s.answer_only_sft, pool.size());

  // SFT (or the SFT model of an earlier run with the same set-up).
  Dataset sft = sft_dataset(tok, demos, eos, o.mask_tool_observations, out + "/sft-data");
  const double t_sft = now_seconds();
  TrainConfig sc;
  sc.method = "sft", sc.output_dir = out + "/sft", sc.learning_rate = 3e-3, sc.per_device_train_batch_size = 16;
  sc.max_steps = s.sft_steps, sc.lr_scheduler_type = "cosine", sc.warmup_ratio = 0.05, sc.logging_steps = 10;
  sc.save_steps = 0, sc.seed = static_cast<int64_t>(o.seed), sc.max_grad_norm = 1.0;
  TrainSummary ss;
  nlohmann::json sft_json = s.to_json();
  std::vector<nlohmann::json> rounds;
  if (state.done("sft")) {  // committed by an earlier process
    model = CausalLM::from_pretrained(sc.output_dir);
    rounds.push_back(state.entry("sft"));
    info("demo: SFT model taken from {} (committed)", sc.output_dir);
  } else if (!o.sft_from.empty()) {
    const std::string src = o.sft_from + "/sft";
    auto prev = nlohmann::json::parse(read_file(o.sft_from + "/summary.json"));
    const auto& ps = prev.value("setup", nlohmann::json::object());
    PREFOPT_REQUIRE(prev.value("seed", uint64_t{0}) == o.seed && prev.value("tools", false) == tools &&
                        ps.value("gold", -1) == s.gold && ps.value("answer_only_sft", -1) == s.answer_only_sft &&
                        ps.value("sft_steps", -1) == s.sft_steps && ps.value("pool", -1) == s.pool &&
                        ps.value("held_out", -1) == s.held_out,
                    "--sft-from " + o.sft_from, "made with another seed, --tools, task sizes or SFT steps",
                    "reuse a run made with the same --seed, --tools, --gold, --answer-only-sft, --pool, --held-out "
                    "and --sft-steps");
    model = CausalLM::from_pretrained(src, dev);
    PREFOPT_REQUIRE(Tokenizer::load(src).encode(demos[0].prompt) == tok.encode(demos[0].prompt),
                    "--sft-from " + o.sft_from, "its tokenizer differs from this run's", "reuse a run of the same set-up");
    if (src != sc.output_dir && dist::is_main()) {
      remove_all(sc.output_dir);
      make_dirs(sc.output_dir);
      if (file_exists(src + "/metrics.jsonl"))
        atomic_write(sc.output_dir + "/metrics.jsonl", read_file(src + "/metrics.jsonl"));
      model->save_pretrained(sc.output_dir);
      tok.save_pretrained(sc.output_dir);
    }
    const auto& r0 = prev["rounds"][0];
    ss.steps = r0.value("train_steps", int64_t{0});
    ss.first_loss = r0.value("sft_loss_first", 0.0), ss.last_loss = r0.value("sft_loss_last", 0.0);
    info("demo: SFT model taken from {}", src);
  } else {
    if (dist::is_main()) reset_step_dir(sc.output_dir);
    TestKillWhileTraining kill_hook("sft", sc.output_dir + "/metrics.jsonl");
    Trainer t(sc, *model, nullptr, sft, std::nullopt, tok_dir);
    ss = t.train();
  }
  model->set_requires_grad(false);

  LoopOptions lo;
  lo.out_dir = out, lo.seed = o.seed, lo.method = o.method, lo.rounds = s.rounds, lo.grader = "gsm8k";
  lo.n_samples = o.n_samples, lo.eval_n = o.eval_n, lo.max_new_tokens = tools ? 64 : 48, lo.temperature = 1.0;
  lo.eos_id = eos, lo.tools = tools, lo.max_tool_calls = 2;
  lo.prompts_per_round = s.prompts_per_round, lo.max_pairs_per_prompt = s.max_pairs;
  lo.truncate_rejected = s.truncate_rejected != 0;
  lo.train = round_config(o, s);

  lo.state = &state;

  if (rounds.empty()) {
    test_kill_point("eval", "sft");
    auto ev0 = evaluate(*model, tok, held, lo, o.seed + 7);
    rounds.push_back(round_entry("sft", ev0, static_cast<int64_t>(sft.rows.size()), ss.steps, now_seconds() - t_sft,
                                 out + "/sft"));
    rounds.back()["sft_loss_first"] = ss.first_loss;
    rounds.back()["sft_loss_last"] = ss.last_loss;
    info("sft: pass@1 {:.3f} (+-{:.3f}), greedy accuracy {:.3f}", ev0.pass_at_k[1], ev0.pass1_stderr,
         ev0.greedy_accuracy);
    state.commit("sft", rounds.back(), out + "/sft");
  }
  const auto sft_problems = read_per_problem(out + "/sft");
  auto annotate = [&](nlohmann::json& e, const std::string& dir) {
    auto [g, se] = paired_gain(sft_problems, read_per_problem(dir));
    e["gain_over_sft"] = {{"pass_at_1", g}, {"stderr", se}};
  };
  auto more = run_rounds(model, tok, tok_dir, pool, held, lo);
  for (auto& e : more) annotate(e, out + "/" + e["name"].get<std::string>());
  rounds.insert(rounds.end(), more.begin(), more.end());

  // Controls: the same SFT model, the same held-out evaluation and the same training tokens per round.
  std::vector<nlohmann::json> controls;
  if (o.controls && !more.empty()) {
    {  // sft_more: more SFT on the supervised data, the only supervised data there is
      auto m = CausalLM::from_pretrained(out + "/sft", dev);
      LoopOptions so = lo;
      so.out_dir = out + "/controls/sft_more", so.label = "sft_more", so.step_prefix = "controls/sft_more/";
      for (auto& e : more) so.round_train_tokens.push_back(e["train_tokens"].get<int64_t>());
      auto cr = run_sft_rounds(m, tok, tok_dir, sft, held, so);
      for (auto& e : cr) annotate(e, so.out_dir + "/" + e["name"].get<std::string>());
      controls.push_back(control_entry("sft_more", cr));
    }
    {  // rft: rejection-sampling fine-tuning (expert iteration) on its own verified-correct samples
      auto m = CausalLM::from_pretrained(out + "/sft", dev);
      m->set_requires_grad(false);
      LoopOptions ro = lo;
      ro.out_dir = out + "/controls/rft", ro.method = "rft", ro.label = "rft", ro.step_prefix = "controls/rft/";
      for (auto& e : more) ro.round_train_tokens.push_back(e["train_tokens"].get<int64_t>());
      auto cr = run_rounds(m, tok, tok_dir, pool, held, ro);
      for (auto& e : cr) annotate(e, ro.out_dir + "/" + e["name"].get<std::string>());
      controls.push_back(control_entry("rft", cr));
    }
  }

  // The saved last model and tokenizer load back with identical logits.
  {
    auto re = CausalLM::from_pretrained(out + "/" + rounds.back()["name"].get<std::string>(), dev);
    Tokenizer tok2 = Tokenizer::load(out + "/sft");
    at::NoGradGuard ng;
    auto e = tok.encode(held[0].prompt);
    auto probe = at::tensor(std::vector<int64_t>(e.begin(), e.end()), at::kLong).view({1, -1});
    auto pm = at::ones_like(probe);
    PREFOPT_ASSERT(at::equal(model->forward(probe, pm), re->forward(probe, pm)) && tok2.encode(held[0].prompt) == e,
                   "demo: the reloaded model or tokenizer differs from the saved one");
  }
  nlohmann::json summary = {{"seed", o.seed},
                            {"method", o.method},
                            {"tools", tools},
                            {"mask_tool_observations", o.mask_tool_observations},
                            {"quick", o.quick},
                            {"setup", s.to_json()},
                            {"n_samples", o.n_samples},
                            {"eval_n", o.eval_n},
                            {"beta", o.beta},
                            {"rpo_alpha", o.rpo_alpha},
                            {"seconds", now_seconds() - t0 + state.resumed_seconds()},
                            {"rounds", rounds}};
  if (o.controls) summary["controls"] = controls;
  if (dist::is_main()) {
    atomic_write(out + "/summary.json", summary.dump(2) + "\n");
    write_report(out);
  }
  return summary;
}

std::string demo_printout(const nlohmann::json& sm) {
  const auto& rounds = sm["rounds"];
  const auto& first = rounds.front();
  const auto& last = rounds.back();
  const int eval_n = sm.value("eval_n", 8);
  const auto setup = sm.value("setup", nlohmann::json::object());
  std::string s = fmt::format(
      "prefopt demo (seed {}, method {}{}): held-out pass@1 {:.1f}% (+-{:.1f}) after SFT -> {:.1f}% (+-{:.1f}) after {} "
      "round(s)",
      sm.value("seed", uint64_t{0}), sm.value("method", std::string("?")), sm.value("tools", false) ? ", tools python" : "",
      100 * first["pass_at_k"]["1"].get<double>(), 100 * first.value("pass_at_1_stderr", 0.0),
      100 * last["pass_at_k"]["1"].get<double>(), 100 * last.value("pass_at_1_stderr", 0.0), rounds.size() - 1);
  if (last.contains("gain_over_sft"))
    s += fmt::format(": {:+.1f} points (paired standard error {:.1f})", 100 * last["gain_over_sft"]["pass_at_1"].get<double>(),
                     100 * last["gain_over_sft"]["stderr"].get<double>());
  s += fmt::format(".\n  n={} samples at T=1.0 on {} held-out problems; +- one standard error over problems; {:.0f} s.\n",
                   eval_n, setup.value("held_out", 0), sm.value("seconds", 0.0));
  auto line = [&](const std::string& arm, const nlohmann::json& r) {
    std::string g;
    if (r.contains("gain_over_sft"))
      g = fmt::format("  vs sft {:+.1f} (+-{:.1f})", 100 * r["gain_over_sft"]["pass_at_1"].get<double>(),
                      100 * r["gain_over_sft"]["stderr"].get<double>());
    return fmt::format("  {:<10} {:<7} pass@1 {:.3f} (+-{:.3f})  pass@{} {:.3f}  greedy {:.3f}  rows {:>5}  steps {:>5}{}\n",
                       arm, r["name"].get<std::string>(), r["pass_at_k"]["1"].get<double>(),
                       r.value("pass_at_1_stderr", 0.0), eval_n, r["pass_at_k"].value(std::to_string(eval_n), 0.0),
                       r.value("greedy_accuracy", 0.0), r.value("pairs", int64_t{0}), r.value("train_steps", int64_t{0}), g);
  };
  for (auto& r : rounds) s += line(sm.value("method", std::string("?")), r);
  if (sm.contains("controls"))
    for (auto& c : sm["controls"])
      for (auto& r : c["rounds"]) s += line(c["name"].get<std::string>(), r);
  return s;
}

}  // namespace prefopt::pipeline
