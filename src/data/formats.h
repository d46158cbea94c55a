// prefopt data: rows in other tools' layouts -> TRL rows.
//
// LLaMA-Factory (data/README.md of hiyouga/LLaMA-Factory), as its demo files lay them out:
//   sharegpt   {"conversations": [{"from": "human"|"gpt"|"system"|"observation"|"function_call",
//                                   "value": ...}] (or {"role", "content"} messages),
//               "system"?: str, "chosen"?: {"from", "value"}, "rejected"?: {...}}
//   KTO        {"messages": [{"role", "content"}...], "label" | "kto_tag": bool}
//              (the last message is the completion; it must be the assistant's)
//   alpaca     {"instruction", "input"?, "system"?, "history"?: [[query, reply], ...],
//               "chosen"/"rejected" (preference) | "output" (+ "label"/"kto_tag" for KTO)}
// become TRL conversational rows: {"prompt": [messages], "chosen": [assistant], "rejected":
// [assistant]}, {"prompt", "completion", "label"} or {"messages"} (SFT). Roles map
// human -> user, gpt / function_call -> assistant, observation -> tool, system -> system;
// an alpaca prompt is "instruction\ninput" as LLaMA-Factory joins them. TRL rows pass
// through unchanged.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.h"

namespace prefopt {

// The TRL form of `row` for a dataset of `kind`; errors name file:line.
nlohmann::json to_trl_row(const nlohmann::json& row, DataKind kind, const std::string& file, size_t line);

}  // namespace prefopt
