// prefopt Python module: conversions between Python objects and the library's
// types (nlohmann JSON, id lists, paths). Every failed conversion is a
// prefopt::Error naming `where` (the argument), so Python sees prefopt.Error.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace prefopt::py_bind {

namespace py = pybind11;

// dict / list / tuple / str / int / float / bool / None -> JSON (dict keys must be str).
nlohmann::ordered_json to_json(py::handle h, const std::string& where);
// JSON -> the Python objects json.loads would give.
py::object from_json(const nlohmann::ordered_json& j);
py::object from_json(const nlohmann::json& j);

// A list (or tuple) of ints.
std::vector<int64_t> to_ids(py::handle h, const std::string& where);
// A list of lists of ints.
std::vector<std::vector<int64_t>> to_id_lists(py::handle h, const std::string& where);
// str or os.PathLike -> a path string.
std::string to_path(py::handle h, const std::string& where);
// Whether h is a str or an os.PathLike.
bool is_path_like(py::handle h);

}  // namespace prefopt::py_bind
