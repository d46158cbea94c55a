#include "core/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"

namespace prefopt {
namespace fs = std::filesystem;

static std::string errno_str() { return std::strerror(errno); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open file: " + errno_str(), "check that the path exists and is readable");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}
std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string p(path);
  size_t b = 0;
  while (b <= p.size()) {
    size_t e = p.find(':', b);
    if (e == std::string::npos) e = p.size();
    std::string cand = p.substr(b, e - b) + "/" + name;
    if (e > b && access(cand.c_str(), X_OK) == 0) return cand;
    b = e + 1;
  }
  return "";
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}
void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    fail(path, "cannot create directory: " + ec.message(),
         "the path, or a directory above it, exists as a file or is not writable; choose another directory");
}
void remove_all(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

static std::string unique_suffix() {
  static std::random_device rd;
  return std::to_string(getpid()) + "." + std::to_string(rd());
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

static std::string parent_of(const std::string& path) {
  fs::path p(path);
  auto d = p.parent_path();
  return d.empty() ? "." : d.string();
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  tmp_ = path + ".tmp." + unique_suffix();
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    fail(path, "cannot create temporary file " + tmp_ + ": " + errno_str(),
         "check that the directory exists and is writable");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path_, "write failed: " + errno_str(), "is the disk full?");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) fail(path_, "AtomicFile committed twice");
  if (::fsync(fd_) != 0) fail(path_, "fsync failed: " + errno_str());
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::string e = errno_str();
    ::unlink(tmp_.c_str());
    fail(path_, "rename from " + tmp_ + " failed: " + e);
  }
  fsync_path(parent_of(path_));
}

void atomic_write(const std::string& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data);
  f.commit();
}

void atomic_write_dir(const std::string& dir, const std::function<void(const std::string&)>& fill) {
  std::string clean = dir;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  make_dirs(parent_of(clean));
  std::string tmp = clean + ".tmp." + unique_suffix();
  remove_all(tmp);
  make_dirs(tmp);
  try {
    fill(tmp);
    for (auto& e : fs::recursive_directory_iterator(tmp)) fsync_path(e.path().string());
    fsync_path(tmp);
  } catch (...) {
    remove_all(tmp);
    throw;
  }
  std::string old;
  if (file_exists(clean)) {
    old = clean + ".old." + unique_suffix();
    if (::rename(clean.c_str(), old.c_str()) != 0) {
      remove_all(tmp);
      fail(clean, "cannot move the previous directory aside: " + errno_str());
    }
  }
  if (::rename(tmp.c_str(), clean.c_str()) != 0) {
    std::string e = errno_str();
    if (!old.empty()) ::rename(old.c_str(), clean.c_str());
    remove_all(tmp);
    fail(clean, "rename from " + tmp + " failed: " + e);
  }
  fsync_path(parent_of(clean));
  if (!old.empty()) remove_all(old);
}

}  // namespace prefopt
