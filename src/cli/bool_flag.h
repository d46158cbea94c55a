// prefopt CLI: a boolean flag spelled as HF's argument parser takes it:
// `--key` (true), `--key true|false` or `--key=false` (also True/False/1/0).
// A bad value is an Error naming the flag (exit 2). Given more than once, the last
// one counts (as a repeated CLI11 flag or argparse's store_true).
#pragma once
#include <CLI/CLI.hpp>

#include <string>

#include "core/error.h"

namespace prefopt::cli {

inline CLI::Option* add_bool_flag(CLI::App* cmd, const std::string& names, bool& target, const std::string& help) {
  const std::string shown = names.substr(0, names.find(','));
  return cmd
      ->add_option_function<std::string>(
          names,
          [&target, shown](const std::string& v) {
            if (v.empty() || v == "true" || v == "True" || v == "1") target = true;
            else if (v == "false" || v == "False" || v == "0") target = false;
            else fail(shown, "expected true or false, found \"" + v + "\"", "write " + shown + " or " + shown + " true|false");
          },
          help)
      ->expected(0, 1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

}  // namespace prefopt::cli
