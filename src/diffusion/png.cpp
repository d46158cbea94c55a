#include "diffusion/png.h"

#include <zlib.h>

#include "core/error.h"
#include "core/fs.h"

namespace prefopt::diffusion {

namespace {
void put_u32(std::string& s, uint32_t v) {
  for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
void chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}
}  // namespace

std::string encode_png(const std::vector<uint8_t>& rgb, int width, int height) {
  PREFOPT_ASSERT(width > 0 && height > 0 && rgb.size() == static_cast<size_t>(width) * height * 3,
                 "png: {} bytes for {}x{}", rgb.size(), width, height);
  std::string raw;
  raw.reserve(static_cast<size_t>(height) * (width * 3 + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    raw.append(reinterpret_cast<const char*>(rgb.data()) + static_cast<size_t>(y) * width * 3,
               static_cast<size_t>(width) * 3);
  }
  uLongf n = compressBound(raw.size());
  std::string z(n, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(raw.data()),
                           raw.size(), 9);
  PREFOPT_ASSERT(rc == Z_OK, "png: zlib compress2 returned {}", rc);
  z.resize(n);
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, RGB, deflate, filter 0, no interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height) {
  atomic_write(path, encode_png(rgb, width, height));
}

}  // namespace prefopt::diffusion
