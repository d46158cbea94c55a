// Sample -> grade -> pass@k, through the library.
//
//   sample_grade_passk [MODEL_DIR]
//
// Draws 16 held-out problems of prefopt's built-in arithmetic task, samples
// n = 8 answers per problem (one shared prompt prefill each), grades them with
// the GSM8K grader and prints the unbiased pass@k (Chen et al. 2021). MODEL_DIR
// is a model with its tokenizer (e.g. demo-out/round3 of `prefopt demo`); with
// none, a random tiny Llama and a tokenizer trained here on the task's text are
// used (pass@k is then near 0). Checks: each gold solution grades CORRECT and
// pass@k does not decrease in k (exit 1 otherwise).
#include <cstdio>
#include <exception>

#include "core/error.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "pipeline/task.h"
#include "tokenizer/tokenizer.h"
#include "verify/math_grader.h"
#include "verify/passk.h"

using namespace prefopt;

int main(int argc, char** argv) {
  try {
    auto task = pipeline::make_task(/*seed=*/1, /*n_train=*/200, /*n_held=*/16);
    std::unique_ptr<CausalLM> model;
    std::unique_ptr<Tokenizer> tok;
    if (argc > 1) {
      model = CausalLM::from_pretrained(argv[1]);
      tok = std::make_unique<Tokenizer>(Tokenizer::load(argv[1]));
    } else {
      std::vector<std::string> corpus;
      for (auto& p : task.train) corpus.push_back(pipeline::task_prompt(p) + p.solution);
      tok = std::make_unique<Tokenizer>(train_bpe(corpus, 300, {"<|endoftext|>"}, /*split_digits=*/true));
      auto cfg = llama_config(tok->vocab_size(), 64, 2, 4, 2, 128, 256);
      cfg.eos_token_ids = {*tok->token_to_id("<|endoftext|>")};
      model = CausalLM::from_config(cfg, /*seed=*/0);
    }

    std::vector<std::vector<int64_t>> prompts;
    for (auto& p : task.held_out) {
      auto ids = tok->encode(pipeline::task_prompt(p));
      prompts.emplace_back(ids.begin(), ids.end());
    }
    SamplingParams sp;
    sp.n = 8, sp.temperature = 1.0, sp.max_new_tokens = 48, sp.seed = 0;
    sp.eos_ids.assign(model->config().eos_token_ids.begin(), model->config().eos_token_ids.end());
    auto samples = sample(*model, tok.get(), prompts, sp);

    std::map<std::string, ProblemCounts> counts;
    int gold_ok = 0;
    for (size_t i = 0; i < task.held_out.size(); ++i) {
      const auto& p = task.held_out[i];
      const std::string answer = std::to_string(p.answer);
      gold_ok += grade_gsm8k(p.solution, answer).grade == Grade::CORRECT;  // the positive control
      auto& c = counts["held-" + std::to_string(i)];
      for (auto& s : samples[i]) {
        c.n++;
        c.c += grade_gsm8k(s.text, answer).grade == Grade::CORRECT;
      }
      if (i < 2) std::printf("problem: %s\n  sample: %s\n", p.question.c_str(), samples[i][0].text.c_str());
    }
    auto curve = mean_pass_at_k(counts, pass_at_k_grid(sp.n));
    double prev = 0;
    bool monotone = true;
    for (auto& [k, v] : curve) {
      std::printf("pass@%lld = %.4f\n", static_cast<long long>(k), v);
      monotone = monotone && v >= prev - 1e-12;
      prev = v;
    }
    std::printf("gold solutions graded CORRECT: %d / %zu\n", gold_ok, task.held_out.size());
    return gold_ok == static_cast<int>(task.held_out.size()) && monotone ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 3;
  }
}
