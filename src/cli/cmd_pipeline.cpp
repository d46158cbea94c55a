#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace prefopt::cli {
void register_pipeline(CLI::App& app) {}
}  // namespace prefopt::cli
