#include "core/jsonl.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace prefopt {

std::string where(const std::string& file, size_t line) { return file + ":" + std::to_string(line); }

std::string read_maybe_gz(const std::string& path) {
  if (path.size() < 3 || path.compare(path.size() - 3, 3, ".gz") != 0) return read_file(path);
  gzFile g = gzopen(path.c_str(), "rb");
  if (!g) fail(path, "cannot open gzip file", "check that the path exists and is readable");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(g, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int err = 0;
  const char* msg = gzerror(g, &err);
  gzclose(g);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) fail(path, std::string("corrupt gzip data: ") + msg);
  return out;
}

void for_each_jsonl(const std::string& path, const std::function<void(const json&, size_t)>& fn) {
  std::string text = read_maybe_gz(path);
  size_t line = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string_view s(text.data() + pos, end - pos);
    pos = end + 1;
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    if (s.find_first_not_of(" \t") == std::string_view::npos) continue;
    json row;
    try {
      row = json::parse(s);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
      fail(where(path, line), std::string("malformed JSON: ") + e.what(),
           "each line must be one complete JSON object (JSONL) with finite numbers");
    }
    fn(row, line);
  }
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  for_each_jsonl(path, [&](const json& r, size_t) { rows.push_back(r); });
  return rows;
}

void write_jsonl(const std::string& path, const std::vector<json>& rows) {
  std::string out;
  for (auto& r : rows) {
    out += r.dump(-1, ' ', false, json::error_handler_t::replace);
    out += '\n';
  }
  atomic_write(path, out);
}

const json& require_field(const json& row, const char* key, const std::string& file, size_t line) {
  if (!row.is_object()) fail(where(file, line), "expected a JSON object, found " + std::string(row.type_name()));
  auto it = row.find(key);
  if (it == row.end())
    fail(where(file, line), std::string("missing field \"") + key + "\"",
         "add the field or check the data format in README.md");
  return *it;
}

}  // namespace prefopt
