#include "io/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"

namespace prefopt::io {

const char* to_string(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "f32";
    case GgmlType::F16: return "f16";
    case GgmlType::Q8_0: return "q8_0";
  }
  return "?";
}

uint64_t ggml_row_bytes(GgmlType t, int64_t ne0) {
  switch (t) {
    case GgmlType::F32: return uint64_t(ne0) * 4;
    case GgmlType::F16: return uint64_t(ne0) * 2;
    case GgmlType::Q8_0:
      PREFOPT_ASSERT(ne0 % kQ8Block == 0, "q8_0 row of {} values is not a multiple of {}", ne0, kQ8Block);
      return uint64_t(ne0 / kQ8Block) * kQ8BlockBytes;
  }
  PREFOPT_ASSERT(false, "unknown ggml type {}", uint32_t(t));
  return 0;
}

// ---------------------------------------------------------------- half precision
uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xFFu;
  uint32_t man = x & 0x7FFFFFu;
  if (exp == 0xFF) return uint16_t(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0));  // inf / nan
  int32_t e = int32_t(exp) - 127 + 15;
  if (e >= 0x1F) return uint16_t(sign | 0x7C00u);  // overflow -> inf
  if (e <= 0) {                                     // subnormal half (or zero)
    if (e < -10) return uint16_t(sign);
    man |= 0x800000u;
    const uint32_t shift = uint32_t(14 - e);
    uint32_t h = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  uint32_t h = (uint32_t(e) << 10) | (man >> 13);
  const uint32_t rem = man & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return uint16_t(sign | h);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, x;
  if (exp == 0) {
    if (man == 0) {
      x = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while (!(man & 0x400u));
      x = sign | (uint32_t(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    x = sign | 0x7F800000u | (man << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// ---------------------------------------------------------------- Q8_0
void quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  PREFOPT_ASSERT(n % kQ8Block == 0, "q8_0: {} values is not a multiple of {}", n, kQ8Block);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const float* xb = x + b * kQ8Block;
    uint8_t* ob = out + b * kQ8BlockBytes;
    float amax = 0.f;
    for (int j = 0; j < kQ8Block; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    const uint16_t dh = fp32_to_fp16(d);
    std::memcpy(ob, &dh, 2);
    for (int j = 0; j < kQ8Block; ++j) {
      const float q = std::round(xb[j] * id);  // half away from zero, as C roundf
      ob[2 + j] = uint8_t(int8_t(std::clamp(q, -127.f, 127.f)));
    }
  }
}

void dequantize_q8_0(const uint8_t* in, int64_t n, float* out) {
  PREFOPT_ASSERT(n % kQ8Block == 0, "q8_0: {} values is not a multiple of {}", n, kQ8Block);
  for (int64_t b = 0; b < n / kQ8Block; ++b) {
    const uint8_t* ib = in + b * kQ8BlockBytes;
    uint16_t dh;
    std::memcpy(&dh, ib, 2);
    const float d = fp16_to_fp32(dh);
    for (int j = 0; j < kQ8Block; ++j) out[b * kQ8Block + j] = d * float(int8_t(ib[2 + j]));
  }
}

// ---------------------------------------------------------------- writer
namespace {
template <typename T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& s, const std::string& v) {
  put<uint64_t>(s, v.size());
  s += v;
}
uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  PREFOPT_ASSERT(alignment > 0 && alignment % 8 == 0, "GGUF alignment {} must be a positive multiple of 8", alignment);
  add_u32("general.alignment", alignment);
}

bool GgufWriter::has_key(const std::string& key) const {
  return std::any_of(kv_.begin(), kv_.end(), [&](const auto& p) { return p.first == key; });
}

void GgufWriter::add_kv(const std::string& key, GgufValue type, std::string payload) {
  PREFOPT_ASSERT(!has_key(key), "GGUF key {} added twice", key);
  std::string e;
  put<uint32_t>(e, uint32_t(type));
  e += payload;
  kv_.emplace_back(key, std::move(e));
}

void GgufWriter::add_string(const std::string& key, const std::string& v) {
  std::string p;
  put_str(p, v);
  add_kv(key, GgufValue::STRING, std::move(p));
}
void GgufWriter::add_u32(const std::string& key, uint32_t v) {
  std::string p;
  put(p, v);
  add_kv(key, GgufValue::U32, std::move(p));
}
void GgufWriter::add_i32(const std::string& key, int32_t v) {
  std::string p;
  put(p, v);
  add_kv(key, GgufValue::I32, std::move(p));
}
void GgufWriter::add_f32(const std::string& key, float v) {
  std::string p;
  put(p, v);
  add_kv(key, GgufValue::F32, std::move(p));
}
void GgufWriter::add_bool(const std::string& key, bool v) {
  std::string p;
  put<uint8_t>(p, v ? 1 : 0);
  add_kv(key, GgufValue::BOOL, std::move(p));
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::string p;
  put<uint32_t>(p, uint32_t(GgufValue::STRING));
  put<uint64_t>(p, v.size());
  for (const auto& s : v) put_str(p, s);
  add_kv(key, GgufValue::ARRAY, std::move(p));
}
void GgufWriter::add_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::string p;
  put<uint32_t>(p, uint32_t(GgufValue::I32));
  put<uint64_t>(p, v.size());
  for (int32_t x : v) put(p, x);
  add_kv(key, GgufValue::ARRAY, std::move(p));
}
void GgufWriter::add_f32_array(const std::string& key, const std::vector<float>& v) {
  std::string p;
  put<uint32_t>(p, uint32_t(GgufValue::F32));
  put<uint64_t>(p, v.size());
  for (float x : v) put(p, x);
  add_kv(key, GgufValue::ARRAY, std::move(p));
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                            std::function<std::string()> data) {
  PREFOPT_ASSERT(!ne.empty() && ne.size() <= 4, "GGUF tensor {} has {} dimensions (1..4)", name, ne.size());
  PREFOPT_ASSERT(std::none_of(tensors_.begin(), tensors_.end(), [&](const Tensor& t) { return t.name == name; }),
                 "GGUF tensor {} added twice", name);
  uint64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= uint64_t(ne[i]);
  const uint64_t bytes = rows * ggml_row_bytes(type, ne[0]);
  tensors_.push_back({name, std::move(ne), type, std::move(data), bytes});
}

void GgufWriter::write(const std::string& path) const {
  std::string head = "GGUF";
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size());
  for (const auto& [k, e] : kv_) {
    put_str(head, k);
    head += e;
  }
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    put_str(head, t.name);
    put<uint32_t>(head, uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(head, uint64_t(d));
    put<uint32_t>(head, uint32_t(t.type));
    put<uint64_t>(head, off);
    off = align_up(off + t.bytes, alignment_);
  }
  head.resize(align_up(head.size(), alignment_), '\0');
  AtomicFile f(path);
  f.write(head);
  uint64_t pos = 0;
  for (const auto& t : tensors_) {
    std::string d = t.data();
    PREFOPT_ASSERT(d.size() == t.bytes, "GGUF tensor {}: {} bytes of data, expected {}", t.name, d.size(), t.bytes);
    f.write(d);
    pos += d.size();
    const uint64_t pad = align_up(pos, alignment_) - pos;
    if (pad) f.write(std::string(pad, '\0'));
    pos += pad;
  }
  f.commit();
}

// ---------------------------------------------------------------- reader
namespace {
struct Cursor {
  const std::string& d;
  const std::string& path;
  size_t p = 0;
  void need(uint64_t n) {
    PREFOPT_REQUIRE(n <= d.size() && p <= d.size() - n, path, fmt::format("truncated at byte {} (needs {} more)", p, n),
                    "the GGUF file is incomplete or damaged");
  }
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, d.data() + p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    need(n);
    std::string s = d.substr(p, n);
    p += n;
    return s;
  }
  nlohmann::json value(uint32_t type, int depth = 0) {
    switch (GgufValue(type)) {
      case GgufValue::U8: return get<uint8_t>();
      case GgufValue::I8: return get<int8_t>();
      case GgufValue::U16: return get<uint16_t>();
      case GgufValue::I16: return get<int16_t>();
      case GgufValue::U32: return get<uint32_t>();
      case GgufValue::I32: return get<int32_t>();
      case GgufValue::F32: return get<float>();
      case GgufValue::BOOL: return get<uint8_t>() != 0;
      case GgufValue::STRING: return str();
      case GgufValue::U64: return get<uint64_t>();
      case GgufValue::I64: return get<int64_t>();
      case GgufValue::F64: return get<double>();
      case GgufValue::ARRAY: {
        PREFOPT_REQUIRE(depth < 4, path, fmt::format("arrays nested too deep at byte {}", p), "the GGUF file is damaged");
        const uint32_t et = get<uint32_t>();
        const uint64_t n = get<uint64_t>();
        PREFOPT_REQUIRE(n <= d.size(), path, fmt::format("array of {} elements at byte {}", n, p),
                        "the GGUF file is damaged");
        nlohmann::json a = nlohmann::json::array();
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(et, depth + 1));
        return a;
      }
    }
    fail(path, fmt::format("unknown GGUF value type {} at byte {}", type, p), "is this a GGUF v2/v3 file?");
  }
};
}  // namespace

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<float> GgufFile::tensor_f32(const GgufTensorInfo& t) const {
  int64_t n = 1;
  for (int64_t d : t.ne) n *= d;
  // bytes is 0 for a type this reader cannot size (or a Q8_0 row not made of whole blocks).
  PREFOPT_REQUIRE(t.bytes > 0, t.name, fmt::format("ggml type {} with {} values per row is not readable here", t.type,
                                                    t.ne.empty() ? 0 : t.ne[0]),
                  "f32, f16 and q8_0 (rows of whole 32-value blocks) are");
  std::vector<float> out(size_t(n), 0.f);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(bytes.data() + data_start + t.offset);
  switch (GgmlType(t.type)) {
    case GgmlType::F32: std::memcpy(out.data(), src, size_t(n) * 4); break;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[size_t(i)] = fp16_to_fp32(h);
      }
      break;
    case GgmlType::Q8_0: dequantize_q8_0(src, n, out.data()); break;
    default: fail(t.name, fmt::format("ggml type {} is not readable here", t.type), "f32, f16 and q8_0 are");
  }
  return out;
}

GgufFile read_gguf(const std::string& path) { return parse_gguf(read_file(path), path); }

GgufFile parse_gguf(std::string bytes, const std::string& path) {
  GgufFile g;
  g.bytes = std::move(bytes);
  Cursor c{g.bytes, path};
  PREFOPT_REQUIRE(g.bytes.size() >= 24 && g.bytes.compare(0, 4, "GGUF") == 0, path,
                  fmt::format("not a GGUF file (magic {:?})", g.bytes.substr(0, 4)), "pass a .gguf file");
  c.p = 4;
  g.version = c.get<uint32_t>();
  PREFOPT_REQUIRE(g.version == 2 || g.version == 3, path, fmt::format("GGUF version {} is not supported", g.version),
                  "versions 2 and 3 are read");
  const uint64_t nt = c.get<uint64_t>(), nkv = c.get<uint64_t>();
  PREFOPT_REQUIRE(nt <= g.bytes.size() && nkv <= g.bytes.size(), path,
                  fmt::format("implausible counts: {} tensors, {} keys", nt, nkv), "the GGUF file is damaged");
  for (uint64_t i = 0; i < nkv; ++i) {
    std::string key = c.str();
    const uint32_t type = c.get<uint32_t>();
    PREFOPT_REQUIRE(!g.kv.contains(key), path, fmt::format("key {:?} appears twice", key), "the GGUF file is damaged");
    g.kv[key] = c.value(type);
    g.kv_type[key] = type;
    g.key_order.push_back(key);
  }
  if (g.kv.contains("general.alignment")) {
    const auto& a = g.kv["general.alignment"];
    PREFOPT_REQUIRE(a.is_number_unsigned() && a.get<uint64_t>() > 0 && a.get<uint64_t>() <= (uint64_t(1) << 30) &&
                        (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) == 0,
                    path, fmt::format("general.alignment must be a power of two up to 2^30, found {}", a.dump()),
                    "the GGUF file is damaged");
    g.alignment = g.kv["general.alignment"].get<uint64_t>();
  }
  for (uint64_t i = 0; i < nt; ++i) {
    GgufTensorInfo t;
    t.name = c.str();
    const uint32_t nd = c.get<uint32_t>();
    PREFOPT_REQUIRE(nd >= 1 && nd <= 4, path, fmt::format("tensor {:?} has {} dimensions", t.name, nd),
                    "GGUF tensors have 1 to 4");
    uint64_t n = 1;
    for (uint32_t k = 0; k < nd; ++k) {
      const uint64_t d = c.get<uint64_t>();
      PREFOPT_REQUIRE(d > 0 && d < (uint64_t(1) << 40), path, fmt::format("tensor {:?} dimension {} is {}", t.name, k, d),
                      "the GGUF file is damaged");
      t.ne.push_back(int64_t(d));
      PREFOPT_REQUIRE(n <= (uint64_t(1) << 60) / d, path, fmt::format("tensor {:?} has more than 2^60 elements", t.name),
                      "the GGUF file is damaged");
      n *= d;
    }
    t.type = c.get<uint32_t>();
    t.offset = c.get<uint64_t>();
    if (t.type == uint32_t(GgmlType::F32) || t.type == uint32_t(GgmlType::F16) ||
        (t.type == uint32_t(GgmlType::Q8_0) && t.ne[0] % kQ8Block == 0))
      t.bytes = (n / uint64_t(t.ne[0])) * ggml_row_bytes(GgmlType(t.type), t.ne[0]);
    g.tensors.push_back(std::move(t));
  }
  g.data_start = align_up(c.p, g.alignment);
  for (const auto& t : g.tensors)
    PREFOPT_REQUIRE(t.offset <= g.bytes.size() && t.bytes <= g.bytes.size() &&
                        g.data_start + t.offset + t.bytes <= g.bytes.size(), path,
                    fmt::format("tensor {:?} (offset {}, {} bytes) lies past the end of the file", t.name, t.offset,
                                t.bytes),
                    "the GGUF file is truncated");
  return g;
}

}  // namespace prefopt::io
