#include "io/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace prefopt::io {
using json = nlohmann::json;

static const std::pair<const char*, StDType> kDtypes[] = {
    {"F64", StDType::F64}, {"F32", StDType::F32}, {"F16", StDType::F16}, {"BF16", StDType::BF16},
    {"I64", StDType::I64}, {"I32", StDType::I32}, {"I16", StDType::I16}, {"I8", StDType::I8},
    {"U8", StDType::U8},   {"BOOL", StDType::BOOL}};

const char* to_string(StDType d) {
  for (auto& [n, t] : kDtypes)
    if (t == d) return n;
  return "?";
}

size_t dtype_size(StDType d) {
  switch (d) {
    case StDType::F64: case StDType::I64: return 8;
    case StDType::F32: case StDType::I32: return 4;
    case StDType::F16: case StDType::BF16: case StDType::I16: return 2;
    case StDType::I8: case StDType::U8: case StDType::BOOL: return 1;
  }
  return 0;
}

static at::ScalarType to_scalar(StDType d) {
  switch (d) {
    case StDType::F64: return at::kDouble;
    case StDType::F32: return at::kFloat;
    case StDType::F16: return at::kHalf;
    case StDType::BF16: return at::kBFloat16;
    case StDType::I64: return at::kLong;
    case StDType::I32: return at::kInt;
    case StDType::I16: return at::kShort;
    case StDType::I8: return at::kChar;
    case StDType::U8: return at::kByte;
    case StDType::BOOL: return at::kBool;
  }
  return at::kFloat;
}

static bool valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + len > n) return false;
    for (int k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    if (len == 2 && c < 0xC2) return false;  // overlong
    if (len == 3) {
      unsigned char c1 = s[i + 1];
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return false;
    }
    if (len == 4) {
      unsigned char c1 = s[i + 1];
      if ((c == 0xF0 && c1 < 0x90) || c > 0xF4 || (c == 0xF4 && c1 >= 0x90)) return false;
    }
    i += len;
  }
  return true;
}

Header parse_header(std::string_view bytes, uint64_t file_size, const std::string& where) {
  const std::string hint = "the file is not a valid safetensors file (truncated or corrupt?); re-download or re-save it";
  if (bytes.size() < 8 || file_size < 8) fail(where, "file is shorter than the 8-byte header length", hint);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > file_size - 8)
    fail(where, fmt::format("header length {} runs past the end of the file ({} bytes)", n, file_size), hint);
  if (n > (100u << 20)) fail(where, fmt::format("header length {} exceeds the 100 MB limit", n), hint);
  if (bytes.size() < 8 + n) fail(where, "header truncated", hint);
  std::string_view text = bytes.substr(8, n);
  if (!valid_utf8(text)) fail(where, "header is not valid UTF-8", hint);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(where, std::string("header is not valid JSON: ") + e.what(), hint);
  }
  if (!j.is_object()) fail(where, "header JSON is not an object", hint);
  Header h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(where, "__metadata__ must be an object of strings", hint);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(where, "__metadata__ value for \"" + m.key() + "\" is not a string", hint);
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    std::string tw = where + ": tensor \"" + name + "\"";
    if (!v.is_object()) fail(tw, "entry is not an object", hint);
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail(tw, "missing or non-string \"dtype\"", hint);
    if (sh == v.end() || !sh->is_array()) fail(tw, "missing or non-array \"shape\"", hint);
    if (off == v.end() || !off->is_array() || off->size() != 2)
      fail(tw, "\"data_offsets\" must be [begin, end], found " + (off == v.end() ? std::string("nothing") : off->dump()),
           hint);
    TensorInfo t;
    t.name = name;
    bool found = false;
    for (auto& [dn, dv] : kDtypes)
      if (*dt == dn) t.dtype = dv, found = true;
    if (!found)
      fail(tw, "unknown dtype \"" + dt->get<std::string>() + "\"",
           "supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
    uint64_t numel = 1;
    constexpr uint64_t kMaxElems = uint64_t(1) << 62;
    for (auto& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        fail(tw, "shape entries must be non-negative integers, found shape " + sh->dump(), hint);
      uint64_t x = d.get<uint64_t>();
      if (x > kMaxElems || (x != 0 && numel > kMaxElems / x))
        fail(tw, "shape " + sh->dump() + " is absurdly large (its element count overflows)", hint);
      numel *= x;
      t.shape.push_back(static_cast<int64_t>(x));
    }
    for (auto& o : *off)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        fail(tw, "data_offsets must be [begin, end] non-negative integers, found " + off->dump(), hint);
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    if (t.end < t.begin) fail(tw, fmt::format("data_offsets [{}, {}] are reversed", t.begin, t.end), hint);
    if (t.end > data_size)
      fail(tw, fmt::format("data_offsets end {} is past the data section ({} bytes)", t.end, data_size), hint);
    const uint64_t dsize = dtype_size(t.dtype);
    if (numel > UINT64_MAX / dsize)
      fail(tw, fmt::format("data_offsets [{}, {}] span {} bytes, which does not match shape {} of {} (its byte size "
                           "overflows)", t.begin, t.end, t.end - t.begin, sh->dump(), to_string(t.dtype)), hint);
    const uint64_t expect = numel * dsize;
    if (t.end - t.begin != expect)
      fail(tw, fmt::format("data_offsets [{}, {}] span {} bytes, which does not match shape {} of {} (needs {} bytes)",
                           t.begin, t.end, t.end - t.begin, sh->dump(), to_string(t.dtype), expect), hint);
    h.tensors.push_back(std::move(t));
  }
  std::vector<const TensorInfo*> sorted;
  for (auto& t : h.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end)
      fail(where,
           fmt::format("tensors \"{}\" [{}, {}) and \"{}\" [{}, {}) overlap", sorted[i - 1]->name, sorted[i - 1]->begin,
                       sorted[i - 1]->end, sorted[i]->name, sorted[i]->begin, sorted[i]->end),
           hint);
  return h;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno), "check the model directory path");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, "cannot stat file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file", "a safetensors checkpoint is a file (model.safetensors)");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    map_ = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      ::close(fd);
      fail(path, "mmap failed");
    }
  }
  ::close(fd);
  try {
    header_ = parse_header(std::string_view(static_cast<const char*>(map_), size_), size_, path);
  } catch (...) {
    if (map_) munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, size_);
}

bool SafetensorsFile::has(const std::string& name) const { return index_.count(name) > 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(path_, "no tensor named \"" + name + "\"");
  return header_.tensors[it->second];
}

at::Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo& t = info(name);
  const char* p = static_cast<const char*>(map_) + header_.data_start + t.begin;
  auto out = at::empty(t.shape, at::TensorOptions().dtype(to_scalar(t.dtype)));
  if (t.end > t.begin) std::memcpy(out.data_ptr(), p, t.end - t.begin);
  return out;
}

at::Tensor SafetensorsFile::get(const std::string& name, at::ScalarType dtype) const {
  auto t = get(name);
  return t.scalar_type() == dtype ? t : t.to(dtype);
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path, at::ScalarType dtype) {
  SafetensorsFile f(path);
  std::map<std::string, at::Tensor> out;
  for (auto& t : f.header().tensors) {
    bool is_float = t.dtype == StDType::F32 || t.dtype == StDType::F16 || t.dtype == StDType::BF16 ||
                    t.dtype == StDType::F64;
    out[t.name] = is_float ? f.get(t.name, dtype) : f.get(t.name);
  }
  return out;
}

CheckpointFiles checkpoint_files(const std::string& dir) {
  CheckpointFiles cf;
  const std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(index)) {
    const std::string hint = "a sharded checkpoint index is {\"weight_map\": {\"TENSOR\": \"model-00001-of-0000N.safetensors\", "
                             "...}}; re-save the checkpoint or remove the index";
    json j;
    try {
      j = json::parse(read_file(index));
    } catch (const json::exception& e) {
      fail(index, std::string("malformed JSON: ") + e.what(), hint);
    }
    PREFOPT_REQUIRE(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index,
                    "expected an object with an object \"weight_map\"", hint);
    std::set<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      PREFOPT_REQUIRE(it.value().is_string(), index,
                      "weight_map[\"" + it.key() + "\"]: expected a file name (a string), found " + it.value().dump(),
                      hint);
      const std::string shard = it.value().get<std::string>();
      PREFOPT_REQUIRE(!shard.empty() && shard.find('/') == std::string::npos && shard != "." && shard != "..", index,
                      "weight_map[\"" + it.key() + "\"]: shard name \"" + shard + "\" must be a plain file name",
                      "shards live in the model directory beside the index");
      cf.weight_map[it.key()] = dir + "/" + shard;
      files.insert(dir + "/" + shard);
    }
    PREFOPT_REQUIRE(!files.empty(), index, "\"weight_map\" is empty", hint);
    cf.index = index;
    cf.files.assign(files.begin(), files.end());
    return cf;
  }
  const std::string single = dir + "/model.safetensors";
  PREFOPT_REQUIRE(file_exists(single), dir, "no model.safetensors or model.safetensors.index.json",
                  "point --model at a Hugging Face model directory (config.json + *.safetensors)");
  cf.files.push_back(single);
  return cf;
}

std::map<std::string, at::Tensor> load_safetensors_dir(const std::string& dir, at::ScalarType dtype) {
  CheckpointFiles cf = checkpoint_files(dir);
  if (cf.index.empty()) return load_safetensors(cf.files[0], dtype);
  std::map<std::string, std::vector<std::string>> by_shard;
  for (auto& [name, file] : cf.weight_map) by_shard[file].push_back(name);
  std::map<std::string, at::Tensor> out;
  for (auto& [shard, names] : by_shard) {
    SafetensorsFile f(shard);
    for (auto& n : names) {
      PREFOPT_REQUIRE(f.has(n), shard, "tensor \"" + n + "\" listed in " + cf.index + " is missing from this shard",
                      "the index and the shards come from different saves; re-save the checkpoint");
      auto t = f.get(n);
      out[n] = t.is_floating_point() ? t.to(dtype) : t;
    }
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      at::ScalarType dtype) {
  PREFOPT_CHECK(dtype == at::kFloat || dtype == at::kBFloat16, "{}: safetensors writer supports F32 and BF16", path);
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  std::vector<at::Tensor> data;
  uint64_t off = 0;
  for (auto& [name, t0] : tensors) {  // std::map: sorted by name
    at::Tensor t = t0.detach().to(at::kCPU);
    if (t.is_floating_point()) t = t.to(dtype);
    t = t.contiguous();
    StDType sd = t.scalar_type() == at::kBFloat16 ? StDType::BF16
               : t.scalar_type() == at::kFloat    ? StDType::F32
               : t.scalar_type() == at::kLong     ? StDType::I64
               : t.scalar_type() == at::kInt      ? StDType::I32
               : t.scalar_type() == at::kBool     ? StDType::BOOL
                                                  : StDType::U8;
    uint64_t nbytes = t.numel() * t.element_size();
    h[name] = {{"dtype", to_string(sd)}, {"shape", t.sizes().vec()}, {"data_offsets", {off, off + nbytes}}};
    off += nbytes;
    data.push_back(t);
  }
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');
  AtomicFile f(path);
  uint64_t n = hs.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  f.write(len, 8);
  f.write(hs);
  for (auto& t : data) f.write(t.data_ptr(), t.numel() * t.element_size());
  f.commit();
}

}  // namespace prefopt::io
