// prefopt io: GGUF (llama.cpp's model file, version 3), a small writer and reader.
//
// Layout (little-endian):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x (string key | u32 value type | value)
//   tensor_count x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset)
//   padding to `general.alignment` (32) | tensor data, each tensor at a multiple of it.
// A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
// ne[0] is the innermost (contiguous) dimension: a row-major [rows, cols] matrix is
// ne = {cols, rows}, the reverse of its PyTorch shape.
// No torch here: tensor data comes as bytes, produced when the file is written.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace prefopt::io {

// ggml tensor types written here (ggml.h numbering).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q8_0 = 8 };
const char* to_string(GgmlType t);
// Bytes of a row of ne0 values (Q8_0: ne0 must be a multiple of 32).
uint64_t ggml_row_bytes(GgmlType t, int64_t ne0);

// GGUF value types (gguf.h numbering).
enum class GgufValue : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12
};

// IEEE half precision, round to nearest even (as ggml's GGML_FP32_TO_FP16 on x86 F16C).
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);

// Q8_0: blocks of 32 values -> one f16 scale d = max|x| / 127 and 32 int8 q = round(x / d)
// (half away from zero; d = 0 gives q = 0), 34 bytes a block. n must be a multiple of 32.
constexpr int kQ8Block = 32;
constexpr int kQ8BlockBytes = 34;
void quantize_q8_0(const float* x, int64_t n, uint8_t* out);
void dequantize_q8_0(const uint8_t* in, int64_t n, float* out);

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);
  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  bool has_key(const std::string& key) const;

  // `ne` in GGUF order (innermost first). `data` is called once while the file is
  // written and must return exactly the tensor's byte size.
  void add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                  std::function<std::string()> data);
  size_t tensor_count() const { return tensors_.size(); }

  // Writes the file atomically. Key or tensor names given twice are internal errors.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    std::function<std::string()> data;
    uint64_t bytes = 0;
  };
  void add_kv(const std::string& key, GgufValue type, std::string payload);
  uint32_t alignment_;
  std::vector<std::pair<std::string, std::string>> kv_;  // key -> encoded (type + value)
  std::vector<Tensor> tensors_;
};

// A parsed GGUF file (read whole into memory: for tests and inspection).
struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;  // relative to data_start
  uint64_t bytes = 0;   // size for the types above; 0 for types this reader does not know
};
struct GgufFile {
  uint32_t version = 0;
  nlohmann::json kv = nlohmann::json::object();  // key -> value (arrays as JSON arrays)
  std::map<std::string, uint32_t> kv_type;       // key -> GgufValue (arrays: ARRAY)
  std::vector<std::string> key_order;
  std::vector<GgufTensorInfo> tensors;           // in file order
  uint64_t alignment = 32, data_start = 0;
  std::string bytes;                             // the whole file
  const GgufTensorInfo* find(const std::string& name) const;
  // The tensor's values as f32 (F32, F16, Q8_0).
  std::vector<float> tensor_f32(const GgufTensorInfo& t) const;
};
// Throws prefopt::Error (naming the file and byte offset) on malformed input.
GgufFile read_gguf(const std::string& path);
// The same from the file's bytes; `where` names it in errors.
GgufFile parse_gguf(std::string bytes, const std::string& where);

}  // namespace prefopt::io
