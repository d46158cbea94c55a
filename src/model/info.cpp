#include "model/info.h"

#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "model/config.h"
#include "model/model.h"

namespace prefopt {

std::string model_info_json(const std::string& dir) {
  ModelConfig c = load_config(dir);
  // Count parameters and dtypes from the headers only (no tensor is read),
  // after checking them against config.json as loading would.
  const auto found = scan_checkpoint(dir);
  check_checkpoint(c, found, is_directory(dir) ? dir + "/config.json" : dir);
  int64_t n = 0;
  std::map<std::string, int64_t> dtypes;
  for (auto& t : found) {
    int64_t k = 1;
    for (auto d : t.shape) k *= d;
    n += k;
    dtypes[t.dtype] += k;
  }
  std::string dtype;
  int64_t best = -1;
  for (auto& [d, k] : dtypes)
    if (k > best) best = k, dtype = d;
  nlohmann::json j = {{"family", to_string(c.family)},
                      {"model_type", c.model_type},
                      {"num_parameters", n},
                      {"dtype", dtype},
                      {"vocab_size", c.vocab_size},
                      {"context_length", c.max_position_embeddings},
                      {"hidden_size", c.hidden_size},
                      {"num_hidden_layers", c.num_hidden_layers},
                      {"num_attention_heads", c.num_attention_heads},
                      {"num_key_value_heads", c.num_key_value_heads},
                      {"head_dim", c.head_dim},
                      {"tie_word_embeddings", c.tie_word_embeddings}};
  return j.dump();
}

}  // namespace prefopt
