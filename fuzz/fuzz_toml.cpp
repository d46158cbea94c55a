// Fuzz target: the TOML configuration files. The input is written to a scratch
// .toml file and read as a `prefopt train` config (top level, then validated)
// and as a `prefopt iterate` config (its keys and its [train] table).
#include "fuzz/fuzz_common.h"
#include "pipeline/iterate.h"
#include "train/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static prefopt::fuzz::ScratchFile file(".toml");
  const std::string& path = file.write(data, size);
  prefopt::fuzz::fuzz_guard([&] {
    prefopt::TrainConfig c;
    prefopt::load_config_toml(c, path);
    c.validate();
    (void)c.method_kind();
    (void)c.to_json().dump();
  });
  prefopt::fuzz::fuzz_guard([&] { (void)prefopt::pipeline::IterateConfig::from_toml(path); });
  return 0;
}
