// prefopt io: safetensors (https://github.com/huggingface/safetensors format):
//   8 bytes little-endian header length N | N bytes JSON header | data.
// The header maps tensor names to {dtype, shape, data_offsets:[begin,end)}
// relative to the data section, plus an optional "__metadata__" string map.
// The parser validates everything and never crashes on corrupt input.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt::io {

enum class StDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char* to_string(StDType d);
size_t dtype_size(StDType d);

struct TensorInfo {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets inside the data section
};

struct Header {
  std::vector<TensorInfo> tensors;           // in header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;                   // 8 + N
};

// Parses and validates a header from the first bytes of a file of `file_size`
// bytes. `where` names the file in errors. Throws prefopt::Error.
Header parse_header(std::string_view bytes, uint64_t file_size, const std::string& where);

// A memory-mapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  const Header& header() const { return header_; }
  const std::string& path() const { return path_; }
  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // Copies the tensor out of the map, converted to `dtype` (CPU).
  at::Tensor get(const std::string& name, at::ScalarType dtype) const;
  at::Tensor get(const std::string& name) const;  // the stored dtype

 private:
  std::string path_;
  Header header_;
  std::map<std::string, size_t> index_;
  void* map_ = nullptr;
  size_t size_ = 0;
};

// The safetensors files of a model directory: model.safetensors, or the shards
// named by model.safetensors.index.json (validated: an object "weight_map" of
// tensor name -> plain file name in the same directory).
struct CheckpointFiles {
  std::vector<std::string> files;                  // paths, sorted
  std::string index;                               // the index path; "" when not sharded
  std::map<std::string, std::string> weight_map;   // tensor -> shard path (sharded only)
};
CheckpointFiles checkpoint_files(const std::string& dir);

// Reads every tensor of a model directory: model.safetensors, or the shards
// listed in model.safetensors.index.json. Converted to `dtype` on CPU.
std::map<std::string, at::Tensor> load_safetensors_dir(const std::string& dir, at::ScalarType dtype);
std::map<std::string, at::Tensor> load_safetensors(const std::string& path, at::ScalarType dtype);

// Writes tensors (sorted by name) as F32 or BF16 with __metadata__ {"format":"pt"},
// atomically. The header is padded with spaces to a multiple of 8 bytes.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      at::ScalarType dtype);

}  // namespace prefopt::io
