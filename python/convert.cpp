#include "convert.h"

#include <fmt/format.h>

#include "core/error.h"

namespace prefopt::py_bind {

using ojson = nlohmann::ordered_json;

static std::string type_name(py::handle h) { return py::str(py::type::of(h).attr("__name__")).cast<std::string>(); }

ojson to_json(py::handle h, const std::string& where) {
  if (h.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(h)) return h.cast<bool>();
  if (py::isinstance<py::int_>(h) || (PyIndex_Check(h.ptr()) && !py::isinstance<py::float_>(h))) {  // numpy ints too
    try {
      return py::int_(py::reinterpret_borrow<py::object>(h)).cast<int64_t>();
    } catch (const py::cast_error&) {
      fail(where, "an integer does not fit in 64 bits", "use smaller values");
    }
  }
  if (py::isinstance<py::float_>(h)) return h.cast<double>();
  if (py::isinstance<py::str>(h)) return h.cast<std::string>();
  if (py::isinstance<py::dict>(h)) {
    ojson o = ojson::object();
    for (auto kv : py::reinterpret_borrow<py::dict>(h)) {
      if (!py::isinstance<py::str>(kv.first))
        fail(where, fmt::format("a dict key is a {}, not a str", type_name(kv.first)), "JSON objects have string keys");
      std::string k = kv.first.cast<std::string>();
      o[k] = to_json(kv.second, where + "[\"" + k + "\"]");
    }
    return o;
  }
  if (py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) {
    ojson a = ojson::array();
    size_t i = 0;
    for (auto x : h) a.push_back(to_json(x, fmt::format("{}[{}]", where, i++)));
    return a;
  }
  fail(where, fmt::format("a {} cannot be converted to JSON", type_name(h)),
       "pass dicts, lists, str, int, float, bool or None");
}

template <typename J>
static py::object from_json_t(const J& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return py::none();
    case nlohmann::json::value_t::boolean: return py::bool_(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(j.template get<uint64_t>());
    case nlohmann::json::value_t::number_float: return py::float_(j.template get<double>());
    case nlohmann::json::value_t::string: {
      const std::string& s = j.template get_ref<const std::string&>();
      // Invalid UTF-8 (a cut multi-byte character) becomes U+FFFD, as the CLI's JSON output does.
      PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
      if (!o) throw py::error_already_set();
      return py::reinterpret_steal<py::object>(o);
    }
    case nlohmann::json::value_t::array: {
      py::list l;
      for (const auto& x : j) l.append(from_json_t(x));
      return std::move(l);
    }
    case nlohmann::json::value_t::object: {
      py::dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d[py::str(it.key())] = from_json_t(it.value());
      return std::move(d);
    }
    default: return py::none();  // binary / discarded: never produced by the library
  }
}
py::object from_json(const ojson& j) { return from_json_t(j); }
py::object from_json(const nlohmann::json& j) { return from_json_t(j); }

std::vector<int64_t> to_ids(py::handle h, const std::string& where) {
  if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h))
    fail(where, fmt::format("expected a list of ints, found a {}", type_name(h)), "e.g. [15496, 995]");
  std::vector<int64_t> v;
  size_t i = 0;
  for (auto x : h) {
    if (py::isinstance<py::bool_>(x) || py::isinstance<py::float_>(x) || !PyIndex_Check(x.ptr()))
      fail(where, fmt::format("item {} is a {}, not an int", i, type_name(x)), "token ids are ints");
    try {
      v.push_back(py::int_(py::reinterpret_borrow<py::object>(x)).cast<int64_t>());
    } catch (const py::cast_error&) {
      fail(where, fmt::format("item {} does not fit in 64 bits", i), "token ids are small non-negative ints");
    }
    ++i;
  }
  return v;
}

std::vector<std::vector<int64_t>> to_id_lists(py::handle h, const std::string& where) {
  if (!py::isinstance<py::list>(h) && !py::isinstance<py::tuple>(h))
    fail(where, fmt::format("expected a list of lists of ints, found a {}", type_name(h)), "e.g. [[1, 2, 3], [4, 5]]");
  std::vector<std::vector<int64_t>> out;
  size_t i = 0;
  for (auto x : h) out.push_back(to_ids(x, fmt::format("{}[{}]", where, i++)));
  return out;
}

bool is_path_like(py::handle h) {
  if (py::isinstance<py::str>(h)) return true;
  // Never released: a static py::object would be destroyed after the interpreter.
  static py::handle path_like = py::object(py::module_::import("os").attr("PathLike")).release();
  return py::isinstance(h, path_like);
}

std::string to_path(py::handle h, const std::string& where) {
  if (!is_path_like(h))
    fail(where, fmt::format("expected a path (str or os.PathLike), found a {}", type_name(h)), "");
  return py::module_::import("os").attr("fspath")(h).cast<std::string>();
}

}  // namespace prefopt::py_bind
