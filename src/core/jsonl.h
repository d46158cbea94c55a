// prefopt core: JSONL with line numbers. Reads plain or gzip (.gz) files.
// Every malformed line is an Error naming "file:line" and what to do.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace prefopt {

using json = nlohmann::json;

// Calls fn(row, line_number) for every non-blank line (1-based line numbers). A file whose
// first character is "[" is one JSON array of rows instead; line_number is then the line
// where each element starts.
void for_each_jsonl(const std::string& path, const std::function<void(const json&, size_t)>& fn);
std::vector<json> read_jsonl(const std::string& path);
// Reads a file whole (gzip-aware).
std::string read_maybe_gz(const std::string& path);
// Writes rows atomically, one compact JSON per line.
void write_jsonl(const std::string& path, const std::vector<json>& rows);
std::string where(const std::string& file, size_t line);  // "file:line"

// Typed field access with errors naming file:line and the field.
const json& require_field(const json& row, const char* key, const std::string& file, size_t line);

}  // namespace prefopt
