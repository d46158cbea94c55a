// Fuzz target: config.json text -> ModelConfig (the JSON parse as load_config
// does it, then parse_config's validation), and for an accepted config the
// tensor layout it implies and its JSON form.
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_common.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  prefopt::fuzz::fuzz_guard([&] {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(data, data + size);
    } catch (const nlohmann::json::exception&) {
      return;  // load_config reports malformed JSON as an Error
    }
    prefopt::ModelConfig c = prefopt::parse_config(j, "fuzz/config.json");
    (void)c.attn_scale();
    for (int64_t l = 0; l < std::min<int64_t>(c.num_hidden_layers, 64); ++l) (void)c.layer_is_sliding(l);
    if (c.num_hidden_layers <= 64) (void)prefopt::expected_tensors(c);
    (void)prefopt::config_to_json(c).dump();
  });
  return 0;
}
