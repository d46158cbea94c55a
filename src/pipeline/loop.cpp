#include "pipeline/loop.h"

#include <ATen/ATen.h>

#include <cstring>
#include <functional>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "data/dataset.h"
#include "dist/dist.h"
#include "generate/sampler.h"
#include "generate/tool_loop.h"
#include "pipeline/run_state.h"
#include "sandbox/sandbox.h"
#include "tokenizer/chat_template.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"
#include "verify/math_grader.h"
#include "verify/pairs.h"
#include "verify/passk.h"

namespace prefopt::pipeline {

namespace {

bool correct(const LoopOptions& o, const std::string& text, const std::string& gold) {
  GradeResult g = o.grader == "math" ? grade_math(text, gold) : grade_gsm8k(text, gold);
  return g.grade == Grade::CORRECT;
}

std::vector<std::vector<int64_t>> encode_prompts(const Tokenizer& tok, const std::vector<LoopProblem>& ps) {
  std::vector<std::vector<int64_t>> out;
  for (auto& p : ps) {
    std::vector<int64_t> ids;
    if (auto b = tok.bos_id()) ids.push_back(*b);
    auto e = tok.encode(p.prompt);
    ids.insert(ids.end(), e.begin(), e.end());
    out.push_back(std::move(ids));
  }
  return out;
}

std::string decode(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  return tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), true);
}

// One generated completion: ids, per-token roles (Assistant / Tool) and text.
struct Gen {
  std::vector<int64_t> ids;
  std::vector<uint8_t> roles;
  std::string text;
};

// n completions per prompt: plain sampling (one shared prefill per prompt),
// or the tool-call loop with code run in the sandbox.
std::vector<std::vector<Gen>> generate(const CausalLM& model, const Tokenizer& tok,
                                       const std::vector<std::vector<int64_t>>& prompts, int n, double temperature,
                                       uint64_t seed, const LoopOptions& o) {
  at::NoGradGuard ng;
  SamplingParams sp;
  sp.n = n, sp.temperature = temperature, sp.top_p = o.top_p, sp.max_new_tokens = o.max_new_tokens, sp.seed = seed;
  if (o.eos_id >= 0) sp.eos_ids = {o.eos_id};
  std::vector<std::vector<Gen>> out(prompts.size());
  if (!o.tools) {
    auto got = sample(model, prompts, sp);
    for (size_t i = 0; i < prompts.size(); ++i)
      for (auto& s : got[i]) {
        Gen g;
        g.ids = s.ids;
        g.roles.assign(g.ids.size(), static_cast<uint8_t>(Role::Assistant));
        g.text = decode(tok, s.ids);
        out[i].push_back(std::move(g));
      }
    return out;
  }
  std::vector<std::vector<int64_t>> rows;
  for (auto& p : prompts)
    for (int j = 0; j < n; ++j) rows.push_back(p);
  ToolLoopParams tp;
  tp.max_tool_calls = o.max_tool_calls, tp.max_new_tokens = o.max_new_tokens;
  Limits lim;
  lim.wall_seconds = 5, lim.cpu_seconds = 5;
  auto tr = run_tool_loop(rows, make_sampling_policy(model, tok, sp),
                          [&](const std::string& prog) { return run_python_transcript(prog, lim); }, tok, tp);
  for (size_t r = 0; r < tr.size(); ++r) out[r / n].push_back({tr[r].ids, tr[r].roles, tr[r].text});
  return out;
}

// Gens as bytes, to gather them from other ranks: per item its index, then
// per completion the ids, the roles and the text, each with its length.
void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }
uint64_t get_u64(const std::string& s, size_t& at) {
  PREFOPT_CHECK(at + sizeof(uint64_t) <= s.size(), "sampling results from another rank are truncated");
  uint64_t v;
  std::memcpy(&v, s.data() + at, sizeof v);
  at += sizeof v;
  return v;
}
void put_item(std::string& s, uint64_t index, const std::vector<Gen>& gens) {
  put_u64(s, index), put_u64(s, gens.size());
  for (auto& g : gens) {
    put_u64(s, g.ids.size());
    s.append(reinterpret_cast<const char*>(g.ids.data()), g.ids.size() * sizeof(int64_t));
    put_u64(s, g.roles.size());
    s.append(reinterpret_cast<const char*>(g.roles.data()), g.roles.size());
    put_u64(s, g.text.size());
    s.append(g.text);
  }
}
std::string get_bytes(const std::string& s, size_t& at, size_t n) {
  PREFOPT_CHECK(at + n <= s.size(), "sampling results from another rank are truncated");
  at += n;
  return s.substr(at - n, n);
}

// Runs gen(a, b) for the slices [a, b) of 16 items of [0, n) that are this
// rank's (slice k on rank k % world size; each slice is seeded by its first
// item, never by the rank) and returns every item's completions on every
// rank, in item order: the same as one rank running every slice.
std::vector<std::vector<Gen>> sliced(size_t n, const std::function<std::vector<std::vector<Gen>>(size_t, size_t)>& gen,
                                     Progress& prog) {
  const size_t S = 16, W = static_cast<size_t>(dist::world_size()), R = static_cast<size_t>(dist::rank());
  std::vector<std::vector<Gen>> out(n);
  std::string mine;
  size_t done = 0;
  for (size_t a = R * S; a < n; a += W * S) {
    const size_t b = std::min(n, a + S);
    auto part = gen(a, b);
    long toks = 0;
    for (size_t i = a; i < b; ++i) {
      for (auto& g : part[i - a]) toks += static_cast<long>(g.ids.size());
      if (W > 1) put_item(mine, i, part[i - a]);
      out[i] = std::move(part[i - a]);
    }
    done += b - a;
    prog.update(static_cast<long>(W > 1 ? done : b), "", toks);
  }
  if (W == 1) return out;
  const auto all = dist::all_gather_bytes(mine);
  for (size_t r = 0; r < W; ++r) {
    if (r == R) continue;
    const std::string& s = all[r];
    size_t at = 0;
    while (at < s.size()) {
      const uint64_t i = get_u64(s, at), k = get_u64(s, at);
      PREFOPT_CHECK(i < n, "sampling results from rank {} name item {} of {}", r, i, n);
      std::vector<Gen> gens(k);
      for (auto& g : gens) {
        const std::string ids = get_bytes(s, at, get_u64(s, at) * sizeof(int64_t));
        g.ids.resize(ids.size() / sizeof(int64_t));
        std::memcpy(g.ids.data(), ids.data(), ids.size());
        const std::string roles = get_bytes(s, at, get_u64(s, at));
        g.roles.assign(roles.begin(), roles.end());
        g.text = get_bytes(s, at, get_u64(s, at));
      }
      out[i] = std::move(gens);
    }
  }
  return out;
}

Completion to_completion(const Gen& g, bool mask_tools) {
  Completion c;
  c.ids.assign(g.ids.begin(), g.ids.end());
  for (auto r : g.roles)
    c.mask.push_back(r == static_cast<uint8_t>(Role::Assistant) || (!mask_tools && r == static_cast<uint8_t>(Role::Tool)));
  return c;
}

// The policy of a committed round (a resumed run continues from it).
std::unique_ptr<CausalLM> load_committed(const LoopOptions& o, const std::string& dir) {
  return o.load_round ? o.load_round(dir) : CausalLM::from_pretrained(dir);
}

}  // namespace

void truncate_after_first_difference(Completion& rejected, const Completion& chosen) {
  size_t d = 0;
  while (d < rejected.ids.size() && d < chosen.ids.size() && rejected.ids[d] == chosen.ids[d]) ++d;
  for (size_t t = d + 1; t < rejected.mask.size(); ++t) rejected.mask[t] = 0;
}

Completion gold_completion(const Tokenizer& tok, const LoopProblem& p, int64_t eos, bool mask_tools) {
  Completion c;
  auto add = [&](const std::string& text, bool tool) {
    for (auto id : tok.encode(text)) c.ids.push_back(id), c.mask.push_back(!tool || !mask_tools);
  };
  if (p.gold_segments.empty()) add(p.gold_solution, false);
  for (auto& [text, tool] : p.gold_segments) add(text, tool);
  if (eos >= 0) c.ids.push_back(static_cast<int32_t>(eos)), c.mask.push_back(1);
  return c;
}

EvalResult evaluate(const CausalLM& model, const Tokenizer& tok, const std::vector<LoopProblem>& problems,
                    const LoopOptions& o, uint64_t seed) {
  EvalResult r;
  r.n = o.eval_n;
  auto prompts = encode_prompts(tok, problems);
  std::map<std::string, ProblemCounts> counts;
  r.per_problem = nlohmann::json::object();
  // in slices of 16 problems (so the progress line moves), split over the ranks: eval_n samples
  // per problem, then its greedy answer (the last completion of each item)
  Progress prog("pass@k eval", static_cast<long>(problems.size()));
  auto got = sliced(problems.size(), [&](size_t a, size_t b) {
    std::vector<std::vector<int64_t>> part(prompts.begin() + a, prompts.begin() + b);
    auto samples = generate(model, tok, part, o.eval_n, o.temperature, seed + a, o);
    auto greedy = generate(model, tok, part, 1, 0.0, seed, o);
    for (size_t i = 0; i < samples.size(); ++i) samples[i].push_back(std::move(greedy[i][0]));
    return samples;
  }, prog);
  prog.finish();
  int greedy_ok = 0;
  for (size_t i = 0; i < problems.size(); ++i) {
    auto& pc = counts[problems[i].id];
    for (size_t j = 0; j + 1 < got[i].size(); ++j) {
      pc.n++;
      pc.c += correct(o, got[i][j].text, problems[i].answer);
    }
    greedy_ok += correct(o, got[i].back().text, problems[i].answer);
    r.per_problem[problems[i].id] = {{"n", pc.n}, {"c", pc.c}};
  }
  r.pass_at_k = mean_pass_at_k(counts, pass_at_k_grid(o.eval_n));
  if (counts.size() > 1) {
    double m = 0, v = 0;
    for (auto& [id, pc] : counts) m += static_cast<double>(pc.c) / pc.n;
    m /= counts.size();
    for (auto& [id, pc] : counts) v += std::pow(static_cast<double>(pc.c) / pc.n - m, 2);
    r.pass1_stderr = std::sqrt(v / (counts.size() - 1) / counts.size());
  }
  r.greedy_accuracy = problems.empty() ? 0.0 : static_cast<double>(greedy_ok) / problems.size();
  return r;
}

nlohmann::json round_entry(const std::string& name, const EvalResult& ev, int64_t pairs, int64_t steps,
                           double seconds, const std::string& dir) {
  nlohmann::json pk = nlohmann::json::object();
  for (auto& [k, v] : ev.pass_at_k) pk[std::to_string(k)] = v;
  if (dist::is_main()) {
    make_dirs(dir);
    atomic_write(dir + "/passk.json",
                 nlohmann::json{{"n", ev.n}, {"pass_at_k", pk}, {"per_problem", ev.per_problem}}.dump(1) + "\n");
  }
  dist::barrier();  // every rank may read it now
  return {{"name", name},  {"pass_at_k", pk},    {"greedy_accuracy", ev.greedy_accuracy}, {"pass_at_1_stderr", ev.pass1_stderr},
          {"pairs", pairs}, {"train_steps", steps}, {"seconds", seconds}};
}

int64_t dataset_tokens(const Dataset& ds) {
  int64_t n = 0;
  for (auto& ex : ds.rows) {
    n += static_cast<int64_t>(ex.prompt.size());
    for (auto& c : ex.completions) n += static_cast<int64_t>(c.ids.size());
  }
  return n;
}

Dataset sft_dataset(const Tokenizer& tok, const std::vector<LoopProblem>& problems, int64_t eos, bool mask_tools,
                    const std::string& path) {
  Dataset d;
  d.path = path;
  d.kind = DataKind::Sft;
  for (auto& p : problems) {
    Example ex;
    ex.line = d.rows.size() + 1;
    auto e = tok.encode(p.prompt);
    ex.prompt.assign(e.begin(), e.end());
    ex.completions.push_back(gold_completion(tok, p, eos, mask_tools));
    d.rows.push_back(std::move(ex));
  }
  d.hash = fnv1a_hex(path + std::to_string(d.rows.size()) + (problems.empty() ? "" : problems[0].prompt));
  return d;
}

std::vector<nlohmann::json> run_sft_rounds(std::unique_ptr<CausalLM>& model, const Tokenizer& tok,
                                           const std::string& tokenizer_dir, const Dataset& ds,
                                           const std::vector<LoopProblem>& held_out, const LoopOptions& o) {
  std::vector<nlohmann::json> out;
  std::string last_done;  // a committed round whose model is not loaded yet
  for (size_t r = 0; r < o.round_train_tokens.size(); ++r) {
    const std::string name = "round" + std::to_string(r + 1), step = o.step_prefix + name;
    TrainConfig tc = o.train;
    tc.method = "sft", tc.output_dir = o.out_dir + "/" + name, tc.save_steps = 0;
    if (o.state && o.state->done(step)) {
      out.push_back(o.state->entry(step));
      last_done = tc.output_dir;
      continue;
    }
    if (!last_done.empty()) model = load_committed(o, last_done), model->set_requires_grad(false), last_done.clear();
    tc.seed = static_cast<int64_t>(o.seed) + static_cast<int64_t>(r) + 1;
    tc.max_steps = steps_for_tokens(o.round_train_tokens[r], tc.per_device_train_batch_size * tc.gradient_accumulation_steps, ds);
    if (dist::is_main()) remove_all(tc.output_dir);
    {
      TestKillWhileTraining kill_hook(step, tc.output_dir + "/metrics.jsonl");
      out.push_back(train_and_evaluate(model, tok, tokenizer_dir, ds, tc, o.label + " " + name, held_out, o));
    }
    out.back()["name"] = name;
    if (o.state) o.state->commit(step, out.back(), tc.output_dir);
  }
  if (!last_done.empty()) model = load_committed(o, last_done), model->set_requires_grad(false);
  return out;
}

int64_t steps_for_tokens(int64_t tokens, int64_t batch, const Dataset& ds) {
  if (ds.rows.empty()) return 1;
  const double row = static_cast<double>(dataset_tokens(ds)) / static_cast<double>(ds.rows.size());
  return std::max<int64_t>(1, std::llround(static_cast<double>(tokens) / (static_cast<double>(batch) * row)));
}

nlohmann::json train_and_evaluate(std::unique_ptr<CausalLM>& model, const Tokenizer& tok,
                                  const std::string& tokenizer_dir, Dataset ds, const TrainConfig& tc,
                                  const std::string& name, const std::vector<LoopProblem>& held_out,
                                  const LoopOptions& o) {
  const double t0 = now_seconds();
  const int64_t rows = static_cast<int64_t>(ds.rows.size()), epoch_tokens = dataset_tokens(ds);
  int64_t steps = 0;
  double epochs = 0;
  if (rows >= 2) {
    Trainer trainer(tc, *model, nullptr, std::move(ds), std::nullopt, tokenizer_dir);
    steps = trainer.train().steps;
    model->set_requires_grad(false);
    if (model->lora() && o.merge_adapter_each_round) {  // the next round's reference is this merged model
      merge_lora(*model);
      if (dist::is_main()) model->save_pretrained(tc.output_dir);
      dist::barrier();
    }
    // epochs actually trained: steps x rows per step over the rows of one epoch
    const double rows_per_step = static_cast<double>(tc.per_device_train_batch_size) * tc.gradient_accumulation_steps;
    epochs = std::min(static_cast<double>(steps) * rows_per_step / static_cast<double>(rows),
                      tc.max_steps > 0 ? 1e9 : tc.num_train_epochs);
  } else {
    warn("{}: fewer than 2 training rows (every prompt all-correct or all-wrong); the model is unchanged", name);
    if (dist::is_main()) {
      if (model->lora()) save_lora(*model, tc.output_dir);
      else model->save_pretrained(tc.output_dir);
      tok.save_pretrained(tc.output_dir);
    }
    dist::barrier();
  }
  EvalResult ev = evaluate(*model, tok, held_out, o, o.seed + 7);
  auto e = round_entry(name, ev, rows, steps, now_seconds() - t0, tc.output_dir);
  e["train_tokens"] = static_cast<int64_t>(std::llround(epochs * static_cast<double>(epoch_tokens)));
  info("{}: pass@1 {:.3f} (+-{:.3f}), greedy accuracy {:.3f}", name, ev.pass_at_k[1], ev.pass1_stderr,
       ev.greedy_accuracy);
  return e;
}

std::vector<nlohmann::json> run_rounds(std::unique_ptr<CausalLM>& model, const Tokenizer& tok,
                                       const std::string& tokenizer_dir, const std::vector<LoopProblem>& pool,
                                       const std::vector<LoopProblem>& held_out, const LoopOptions& o) {
  std::vector<nlohmann::json> entries;
  const std::string m = o.method;
  const bool rft = m == "rft";
  const DataKind kind = rft ? DataKind::Sft : data_kind_for_method(m);
  std::string last_done;  // the directory of a committed round whose model is not loaded yet
  auto load_last_done = [&] {
    if (last_done.empty()) return;
    model = load_committed(o, last_done);
    model->set_requires_grad(false);
    last_done.clear();
  };
  for (int r = o.first_round; r <= o.rounds; ++r) {
    const double t0 = now_seconds();
    const std::string name = "round" + std::to_string(r);
    const std::string shown = o.label.empty() ? name : o.label + " " + name;  // in the log
    const std::string dir = o.out_dir + "/" + name;
    const std::string step = o.step_prefix + name, pairs_step = step + "/pairs";
    if (o.state && o.state->done(step)) {  // committed: its entry and its model as they are
      entries.push_back(o.state->entry(step));
      last_done = dir;
      if (o.on_round) o.on_round(entries.back());
      continue;
    }
    load_last_done();
    const bool pairs_done = o.state && o.state->done(pairs_step);
    if (dist::is_main()) {  // rank 0 writes the loop's files
      if (pairs_done) reset_step_dir_keeping(dir, "pairs.jsonl");  // redo training and evaluation
      else reset_step_dir(dir);
    }
    // 0. this round's prompts: the whole pool, or a fresh slice of it
    std::vector<LoopProblem> train;
    if (o.prompts_per_round <= 0 || static_cast<size_t>(o.prompts_per_round) >= pool.size()) {
      train = pool;
    } else {
      const size_t per = static_cast<size_t>(o.prompts_per_round);
      for (size_t k = 0; k < per; ++k) train.push_back(pool[(static_cast<size_t>(r - 1) * per + k) % pool.size()]);
    }
    auto prompts = encode_prompts(tok, train);
    Dataset ds;
    ds.path = dir + "/pairs.jsonl";
    ds.kind = kind;
    int64_t n_correct = 0, n_total = 0;
    if (pairs_done) {  // the committed training rows, read back exactly
      const auto& pe = o.state->entry(pairs_step);
      n_correct = pe.at("correct").get<int64_t>(), n_total = pe.at("samples").get<int64_t>();
      ds = read_round_rows(ds.path, kind);
    } else {
      // 1. sample n per training prompt (one shared prefill per prompt; the tool loop with --tools) and grade
      std::vector<std::vector<Gen>> samples;
      {
        Progress prog(shown + " sampling", static_cast<long>(train.size()));
        // slices of 16 prompts split over the ranks; every rank gets every sample
        samples = sliced(train.size(), [&](size_t a, size_t b) {
          auto part = generate(*model, tok, std::vector<std::vector<int64_t>>(prompts.begin() + a, prompts.begin() + b),
                               o.n_samples, o.temperature, o.seed * 1000003ull + static_cast<uint64_t>(r) * 7919 + a, o);
          if (a == 0) test_kill_point("sample", step);
          return part;
        }, prog);
        prog.finish();
      }
      std::vector<PromptSamples> graded;
      for (size_t i = 0; i < train.size(); ++i) {
        PromptSamples ps;
        ps.id = train[i].id;
        ps.prompt = static_cast<int64_t>(i);
        for (size_t j = 0; j < samples[i].size(); ++j) {
          GradedSample g;
          // the sampled ids identify a completion (pair builders drop duplicates by it)
          g.completion = nlohmann::json{{"i", j}, {"ids", samples[i][j].ids}};
          g.correct = correct(o, samples[i][j].text, train[i].answer);
          g.score = g.correct;
          n_correct += g.correct, ++n_total;
          ps.samples.push_back(g);
        }
        graded.push_back(std::move(ps));
      }
      auto sample_index = [](const nlohmann::json& c) { return c["i"].get<size_t>(); };
      // 2. build the training rows (pre-tokenized: exactly the sampled ids)
      std::vector<nlohmann::json> rows;
      const bool mask_tools = o.train.mask_tool_observations;
      auto comp = [&](size_t i, size_t j) { return to_completion(samples[i][j], mask_tools); };
      auto mask_json = [](const Completion& c) { return nlohmann::json(c.mask); };
      auto ids_json = [](const std::vector<int32_t>& v) { return nlohmann::json(v); };
      auto has_assistant = [&](size_t i, size_t j) {
        return !samples[i][j].ids.empty() && std::count(samples[i][j].roles.begin(), samples[i][j].roles.end(),
                                                        static_cast<uint8_t>(Role::Assistant)) > 0;
      };
      const uint64_t pair_seed = o.seed + static_cast<uint64_t>(r);
      if (kind == DataKind::Unpaired || kind == DataKind::Sft) {
        std::vector<UnpairedRow> picked =
            rft ? distinct_correct_rows(graded, pair_seed, o.max_pairs_per_prompt) : unpaired_rows(graded);
        for (auto& u : picked) {
          size_t i = u.prompt.get<size_t>(), j = sample_index(u.completion);
          if (!has_assistant(i, j)) continue;
          Example ex;
          ex.line = rows.size() + 1;
          ex.prompt.assign(prompts[i].begin(), prompts[i].end());
          ex.completions.push_back(comp(i, j));
          nlohmann::json row = {{"prompt", train[i].prompt}, {"completion", samples[i][j].text},
                                {"prompt_input_ids", ids_json(ex.prompt)},
                                {"completion_input_ids", ids_json(ex.completions[0].ids)},
                                {"completion_loss_mask", mask_json(ex.completions[0])}};
          if (!rft) row["label"] = u.label, ex.label = u.label;
          rows.push_back(std::move(row));
          ds.rows.push_back(std::move(ex));
        }
      } else {
        auto pairs = o.max_pairs_per_prompt == 1 ? random_correct_incorrect_pairs(graded, pair_seed)
                                                 : correct_incorrect_combinations(graded, pair_seed, o.max_pairs_per_prompt);
        for (auto& p : pairs) {
          size_t i = p.prompt.get<size_t>(), w = sample_index(p.chosen), l = sample_index(p.rejected);
          if (samples[i][w].ids.empty() || samples[i][l].ids.empty()) continue;
          Example ex;
          ex.line = rows.size() + 1;
          ex.prompt.assign(prompts[i].begin(), prompts[i].end());
          ex.completions.push_back(comp(i, w));
          ex.completions.push_back(comp(i, l));
          if (o.truncate_rejected) truncate_after_first_difference(ex.completions[1], ex.completions[0]);
          nlohmann::json row = {{"prompt", train[i].prompt},
                                {"chosen", samples[i][w].text},
                                {"rejected", samples[i][l].text},
                                {"prompt_input_ids", ids_json(ex.prompt)},
                                {"chosen_input_ids", ids_json(ex.completions[0].ids)},
                                {"rejected_input_ids", ids_json(ex.completions[1].ids)},
                                {"chosen_loss_mask", mask_json(ex.completions[0])},
                                {"rejected_loss_mask", mask_json(ex.completions[1])}};
          if (kind == DataKind::Triple) {  // the gold worked solution + EOS
            Completion gc = gold_completion(tok, train[i], o.eos_id, mask_tools);
            row["reference"] = train[i].gold_solution;
            row["reference_input_ids"] = ids_json(gc.ids);
            row["reference_loss_mask"] = mask_json(gc);
            ex.completions.push_back(std::move(gc));
          }
          rows.push_back(std::move(row));
          ds.rows.push_back(std::move(ex));
        }
      }
      {  // the rows, atomically (a kill while writing leaves only a temp file)
        std::string text;
        for (auto& row : rows) text += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        if (dist::is_main()) {
          AtomicFile f(ds.path);
          f.write(std::string_view(text).substr(0, text.size() / 2));
          test_kill_point("pairs", step);
          f.write(std::string_view(text).substr(text.size() / 2));
          f.commit();
        }
        dist::barrier();  // the other ranks may read it back (ds.hash)
      }
      if (o.state)
        o.state->commit(pairs_step, {{"prompts", static_cast<int64_t>(train.size())}, {"correct", n_correct},
                                     {"samples", n_total}, {"rows", static_cast<int64_t>(ds.rows.size())}}, dir);
    }
    ds.hash = dist::broadcast_bytes(dist::is_main() ? fnv1a_hex(read_file(ds.path)) : "");
    info("{}: {} of {} samples correct ({:.1f}%) on {} prompts; {} training rows", shown, n_correct, n_total,
         n_total ? 100.0 * n_correct / n_total : 0.0, train.size(), ds.rows.size());
    // 3. train from the previous round's model; the reference is that model (refreshed each round)
    TrainConfig tc = o.train;
    tc.method = rft ? "sft" : m;
    if (kind == DataKind::Unpaired) {
      // TRL's KTO guideline: desirable_weight * n_desirable ~ undesirable_weight * n_undesirable
      // (the ratio in [1, 4/3]); self-generated samples are mostly wrong early on.
      int64_t nd = 0;
      for (auto& ex : ds.rows) nd += ex.label == 1;
      const int64_t nu = static_cast<int64_t>(ds.rows.size()) - nd;
      if (nd > 0 && nu > nd) {
        tc.desirable_weight = o.train.desirable_weight * static_cast<double>(nu) / static_cast<double>(nd);
        info("{}: {} desirable vs {} undesirable rows; desirable_weight {:.2f}", shown, nd, nu, tc.desirable_weight);
      }
    }
    tc.output_dir = dir;
    tc.save_steps = 0;
    tc.seed = static_cast<int64_t>(o.seed) + r;
    if (static_cast<size_t>(r) <= o.round_train_tokens.size())
      tc.max_steps = steps_for_tokens(o.round_train_tokens[static_cast<size_t>(r - 1)],
                                      tc.per_device_train_batch_size * tc.gradient_accumulation_steps, ds);
    nlohmann::json e;
    {
      TestKillWhileTraining kill_hook(step, dir + "/metrics.jsonl");
      e = train_and_evaluate(model, tok, tokenizer_dir, std::move(ds), tc, shown, held_out, o);
    }
    e["name"] = name;
    // 4. the round's own numbers
    e["seconds"] = now_seconds() - t0;
    e["prompts"] = static_cast<int64_t>(train.size());
    e["train_sample_accuracy"] = n_total ? static_cast<double>(n_correct) / n_total : 0.0;
    if (o.state) o.state->commit(step, e, dir);
    entries.push_back(e);
    if (o.on_round) o.on_round(e);
  }
  load_last_done();  // the last round's policy, as after an uninterrupted run
  return entries;
}

}  // namespace prefopt::pipeline
