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

namespace {

json parse_row(std::string_view s, const std::string& path, size_t line, const char* hint) {
  try {
    return json::parse(s);
  } catch (const json::parse_error& e) {
    fail(where(path, line), std::string("malformed JSON: ") + e.what(), hint);
  } catch (const json::exception& e) {  // e.g. a number out of range (1e400)
    fail(where(path, line), std::string("unreadable JSON value: ") + e.what(), "use finite numbers within double range");
  }
}

size_t line_at(const std::string& text, size_t from, size_t to, size_t line) {
  for (size_t i = from; i < to; ++i) line += text[i] == '\n';
  return line;
}

bool is_json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A file holding one JSON array of rows (the layout of LLaMA-Factory's and many HF
// datasets' .json files): each element is parsed on its own so that an error names the
// line where that element starts.
void for_each_array_element(const std::string& path, const std::string& text, size_t open,
                            const std::function<void(const json&, size_t)>& fn) {
  const char* hint = "the file is a JSON array of rows: check the element at this line";
  size_t line = line_at(text, 0, open, 1), scanned = open;
  size_t pos = open + 1;
  int depth = 0;
  bool in_str = false, esc = false;
  size_t elem_begin = std::string::npos;
  auto flush = [&](size_t end) {
    if (elem_begin == std::string::npos) return false;
    size_t e = end;
    while (e > elem_begin && is_json_ws(text[e - 1])) --e;
    line = line_at(text, scanned, elem_begin, line);
    scanned = elem_begin;
    fn(parse_row(std::string_view(text.data() + elem_begin, e - elem_begin), path, line, hint), line);
    elem_begin = std::string::npos;
    return true;
  };
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (elem_begin == std::string::npos && !is_json_ws(c) && !(depth == 0 && (c == ']' || c == ','))) elem_begin = pos;
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') ++depth;
    else if ((c == '}' || c == ']') && depth > 0) --depth;
    else if (depth == 0 && c == ',') {
      if (!flush(pos)) fail(where(path, line_at(text, scanned, pos, line)), "empty element in the JSON array", hint);
    } else if (depth == 0 && c == ']') {
      flush(pos);
      size_t rest = text.find_first_not_of(" \t\r\n", pos + 1);
      if (rest != std::string::npos)
        fail(where(path, line_at(text, scanned, rest, line)), "text after the end of the JSON array",
             "a .json data file holds exactly one array of rows");
      return;
    }
  }
  fail(where(path, line_at(text, scanned, text.size(), line)), "the JSON array is not closed",
       "the file is truncated, or a bracket or quote is missing");
}

}  // namespace

void for_each_jsonl(const std::string& path, const std::function<void(const json&, size_t)>& fn) {
  std::string text = read_maybe_gz(path);
  size_t start = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // a UTF-8 byte-order mark
  size_t first = text.find_first_not_of(" \t\r\n", start);
  if (first != std::string::npos && text[first] == '[') return for_each_array_element(path, text, first, fn);
  size_t line = 0, pos = start;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string_view s(text.data() + pos, end - pos);
    pos = end + 1;
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    if (s.find_first_not_of(" \t") == std::string_view::npos) continue;
    fn(parse_row(s, path, line, "each line must be one complete JSON object (JSONL), or the file one JSON array"), line);
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
