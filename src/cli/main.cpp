// prefopt: direct preference learning for language models, in C++.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

namespace prefopt::cli {
void register_export(CLI::App& app);  // export (GGUF)  (cmd_export.cpp)
void register_bench(CLI::App& app);   // bench dpo-step (cmd_bench.cpp)
}  // namespace prefopt::cli

int main(int argc, char** argv) {
  CLI::App app{"prefopt: direct preference learning (DPO, KTO, BCO, ORPO, SimPO, ...) for HF causal LMs"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for all subcommands");
  // Log level, before or after the subcommand: --quiet (errors and results only), --verbose (debug lines).
  bool quiet = false, verbose = false;
  app.add_flag("--quiet,-q", quiet, "print only errors and results (no progress or info lines)");
  app.add_flag("--verbose,-v", verbose, "also print debug lines");
  app.fallthrough();
  app.parse_complete_callback([&] {
    if (quiet && verbose) throw CLI::ValidationError("--quiet and --verbose exclude each other");
    prefopt::set_log_level(quiet ? prefopt::LogLevel::Quiet : verbose ? prefopt::LogLevel::Debug : prefopt::LogLevel::Info);
  });
  prefopt::cli::register_info(app);
  prefopt::cli::register_model(app);
  prefopt::cli::register_generate(app);
  prefopt::cli::register_tokenize(app);
  prefopt::cli::register_apply_chat_template(app);
  prefopt::cli::register_train(app);
  prefopt::cli::register_sandbox(app);
  prefopt::cli::register_verify(app);
  prefopt::cli::register_pipeline(app);
  prefopt::cli::register_export(app);
  prefopt::cli::register_bench(app);
  prefopt::cli::register_t2i(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const prefopt::Error& e) {  // bad input
    std::fprintf(stderr, "prefopt: error: %s\n", e.what());
    return 2;
  } catch (const prefopt::InternalError& e) {  // a bug: the message names the source file and line
    std::fprintf(stderr, "prefopt: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prefopt: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
