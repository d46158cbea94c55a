#include "model/info.h"

#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace prefopt {

std::string model_info_json(const std::string& dir) {
  ModelConfig c = load_config(dir);
  // Count parameters and dtypes from the headers only (no tensor is read).
  std::vector<std::string> files;
  std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(index)) {
    auto j = nlohmann::json::parse(read_file(index));
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) shards.insert(it.value().get<std::string>());
    for (auto& s : shards) files.push_back(dir + "/" + s);
  } else {
    files.push_back(dir + "/model.safetensors");
  }
  int64_t n = 0;
  std::map<std::string, int64_t> dtypes;
  for (auto& f : files) {
    io::SafetensorsFile sf(f);
    for (auto& t : sf.header().tensors) {
      int64_t k = 1;
      for (auto d : t.shape) k *= d;
      n += k;
      dtypes[io::to_string(t.dtype)] += k;
    }
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
