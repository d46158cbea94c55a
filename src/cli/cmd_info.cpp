// prefopt info [MODEL_DIR] [--system]
#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/log.h"
#include "model/info.h"
#include "model/runtime.h"

namespace prefopt::cli {

static void print_system() {
  nlohmann::json j;
  j["blas_core"] = cpu::blas_core_name();
  j["blas_config"] = cpu::blas_config();
  j["blas_threads"] = cpu::blas_num_threads();
  j["blas_core_chosen_by"] = cpu::user_set_coretype()     ? "user (OPENBLAS_CORETYPE)"
                             : *cpu::chosen_coretype() ? "prefopt (re-exec, OpenBLAS mis-detected the CPU)"
                                                       : "OpenBLAS auto-detection";
  j["aten_threads"] = at::get_num_threads();
  j["cores"] = cpu::num_cores();
  j["flush_denormals"] = cpu::flush_denormals_enabled();
  j["torch_version"] = fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  j["sgemm_gflops"] = measure_sgemm_gflops();
  std::printf("%s\n", j.dump(2).c_str());
}

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Describe a model directory (family, parameters, dtype, vocab, context) or the system");
  auto model = std::make_shared<std::string>();
  auto system = std::make_shared<bool>(false);
  cmd->add_option("model_dir", *model, "HF model directory (config.json + *.safetensors)");
  cmd->add_flag("--system", *system, "print BLAS core, threads and a measured sgemm GFLOP/s");
  cmd->callback([=] {
    if (*system || model->empty()) {
      print_system();
      if (model->empty()) return;
    }
    std::printf("%s\n", model_info_json(*model).c_str());
  });
}

}  // namespace prefopt::cli
