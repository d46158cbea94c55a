// prefopt core: files. Every write that a user keeps is atomic: temp file in
// the same directory, fsync, rename, fsync the directory. Nothing is ever
// half-written.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace prefopt {

std::string read_file(const std::string& path);          // throws Error naming the path
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// The first executable `name` in $PATH, or "".
std::string find_in_path(const std::string& name);
void make_dirs(const std::string& path);                 // mkdir -p
void remove_all(const std::string& path);                // rm -rf (no error if missing)

// Writes `data` to `path` atomically.
void atomic_write(const std::string& path, std::string_view data);

// Streams into a temp file beside `path`; commit() fsyncs and renames.
// If destroyed without commit() the temp file is removed.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// Builds a directory atomically: `fill` writes into a temp directory beside
// `dir`, which is then fsynced and renamed over `dir` (an existing `dir` is
// replaced). On exception the temp directory is removed.
void atomic_write_dir(const std::string& dir, const std::function<void(const std::string& tmp_dir)>& fill);

void fsync_path(const std::string& path);  // file or directory

}  // namespace prefopt
