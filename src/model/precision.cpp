#include "model/precision.h"

#include <ATen/autocast_mode.h>

#include "core/error.h"

namespace prefopt {

Autocast::Autocast(bool on, c10::Device device, c10::ScalarType dtype) : cuda_(device.is_cuda()) {
  if (cuda_) {
    was_on_ = at::autocast::is_enabled(), was_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(on);
    if (on) at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    was_on_ = at::autocast::is_cpu_enabled(), was_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(on);
    if (on) at::autocast::set_autocast_cpu_dtype(dtype);
  }
}

Autocast::~Autocast() {
  if (cuda_) {
    at::autocast::set_enabled(was_on_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_on_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
  if (!at::autocast::is_enabled() && !at::autocast::is_cpu_enabled()) at::autocast::clear_cache();
}

c10::ScalarType parse_torch_dtype(const std::string& s, const std::string& origin, c10::ScalarType auto_dtype) {
  if (s == "auto") return auto_dtype;
  if (s == "float32" || s == "fp32" || s == "float") return c10::kFloat;
  if (s == "bfloat16" || s == "bf16") return c10::kBFloat16;
  if (s == "float16" || s == "fp16" || s == "half") return c10::kHalf;
  fail(origin, "unknown dtype \"" + s + "\"", "use float32, bfloat16, float16 or auto");
}

const char* torch_dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kBFloat16: return "bfloat16";
    case c10::kHalf: return "float16";
    default: return "float32";
  }
}

}  // namespace prefopt
