// prefopt model: a JSON description of a model directory (for `prefopt info`).
#pragma once
#include <string>

namespace prefopt {
// family, model_type, num_parameters, dtype (as stored), vocab_size,
// context_length, hidden_size, layers, heads, kv_heads, head_dim, tied.
std::string model_info_json(const std::string& dir);
}  // namespace prefopt
