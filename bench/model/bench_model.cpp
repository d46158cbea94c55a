// bench_model: log-prob throughput of a ~20M-parameter Llama-shaped model at
// T=512, batch 4 (ATen threads 1 vs all cores), and sgemm GFLOP/s with
// prefopt's BLAS handling vs a child process forced to Debian OpenBLAS's
// mis-detected "Prescott" kernels. Prints JSON lines; ratios in one run.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/cpu.h"
#include "core/log.h"
#include "model/model.h"
#include "model/runtime.h"

using namespace prefopt;

static double logprob_tokens_per_s(const CausalLM& m, int B, int T, int reps) {
  at::NoGradGuard ng;
  auto ids = at::randint(0, m.config().vocab_size, {B, T}, at::kLong);
  auto mask = at::ones({B, T}, at::kLong);
  auto pos = position_ids_from_mask(mask);
  auto labels = ids.narrow(1, 1, T - 1);
  auto run = [&] {
    auto h = m.forward_hidden(ids, pos, mask);
    for (int b = 0; b < B; ++b) {  // chunked log-softmax per row, as token_logprobs does
      auto z = m.logits(h[b].narrow(0, 0, T - 1));
      auto lp = at::log_softmax(z, -1).gather(1, labels[b].unsqueeze(1));
      (void)lp;
    }
  };
  run();  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    double t = now_seconds();
    run();
    best = std::min(best, now_seconds() - t);
  }
  return B * T / best;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--sgemm-only") {
    std::printf("%s\n", nlohmann::json{{"blas_core", cpu::blas_core_name()}, {"sgemm_gflops", measure_sgemm_gflops()}}.dump().c_str());
    return 0;
  }
  // ~21M parameters: vocab 32000 x 256 embeddings and lm_head (untied) + 6 layers.
  auto cfg = llama_config(32000, 256, 6, 8, 4, 768, 1024, false);
  auto m = CausalLM::from_config(cfg, 1);
  nlohmann::json model = {{"params_millions", m->num_parameters() / 1e6}, {"B", 4}, {"T", 512}};
  int cores = cpu::num_cores();
  at::set_num_threads(1);
  double tps1 = logprob_tokens_per_s(*m, 4, 512, 3);
  at::set_num_threads(cores);
  double tpsn = logprob_tokens_per_s(*m, 4, 512, 3);
  std::printf("%s\n", nlohmann::json{{"bench", "logprobs"}, {"model", model}, {"aten_threads_1_tokens_per_s", tps1},
                                     {"aten_threads_cores_tokens_per_s", tpsn}, {"ratio_cores_over_1", tpsn / tps1}}
                          .dump()
                          .c_str());
  at::set_num_threads(1);
  double mine = measure_sgemm_gflops();
  std::string self = "/proc/self/exe";
  char path[4096];
  ssize_t n = readlink(self.c_str(), path, sizeof path - 1);
  path[n > 0 ? n : 0] = 0;
  std::string cmd = std::string("OPENBLAS_CORETYPE=Prescott ") + path + " --sgemm-only";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096] = {0};
  size_t got = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  auto other = nlohmann::json::parse(std::string(buf, got));
  std::printf("%s\n", nlohmann::json{{"bench", "sgemm"}, {"prefopt_blas_core", cpu::blas_core_name()},
                                     {"prefopt_sgemm_gflops", mine}, {"default_detection_core", other["blas_core"]},
                                     {"default_detection_sgemm_gflops", other["sgemm_gflops"]},
                                     {"ratio", mine / other["sgemm_gflops"].get<double>()}}
                          .dump()
                          .c_str());
  return 0;
}
