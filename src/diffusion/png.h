// prefopt diffusion: a minimal PNG encoder (8-bit RGB, filter 0, zlib
// deflate) for sample grids.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace prefopt::diffusion {

// PNG bytes of a width x height RGB image (row-major, 3 bytes a pixel).
std::string encode_png(const std::vector<uint8_t>& rgb, int width, int height);
// Writes it atomically.
void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height);

}  // namespace prefopt::diffusion
