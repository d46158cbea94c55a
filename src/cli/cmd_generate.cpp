#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace prefopt::cli {
void register_generate(CLI::App& app) {}
}  // namespace prefopt::cli
