#include "model/device.h"

#include <ATen/Context.h>

#include <cctype>

#include "core/error.h"

namespace prefopt {

c10::Device parse_device(const std::string& spec, const std::string& origin) {
  const char* hint = "use auto, cpu, cuda or cuda:N (N = 0, 1, ...)";
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec == "auto") return at::hasCUDA() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  int64_t index = 0;
  if (spec == "cuda") {
    index = 0;
  } else if (spec.rfind("cuda:", 0) == 0) {
    const std::string n = spec.substr(5);
    bool digits = !n.empty() && n.size() <= 4;
    for (char ch : n) digits = digits && std::isdigit(static_cast<unsigned char>(ch));
    PREFOPT_REQUIRE(digits, origin, "malformed device \"" + spec + "\": the index after cuda: must be a number", hint);
    index = std::stoll(n);
  } else {
    fail(origin, "unknown device \"" + spec + "\"", hint);
  }
  PREFOPT_REQUIRE(at::hasCUDA(), origin,
                  "device \"" + spec + "\" asked for, but CUDA is not available (this prefopt is built against a "
                  "CPU-only libtorch, or the machine has no CUDA device)",
                  "use --device cpu (or auto), or build against a CUDA libtorch on a machine with a GPU");
  const int64_t count = at::detail::getCUDAHooks().getNumGPUs();
  PREFOPT_REQUIRE(index < count, origin,
                  fmt::format("device \"{}\": there {} {} CUDA device{}", spec, count == 1 ? "is" : "are", count,
                              count == 1 ? "" : "s"),
                  "use an index below the device count");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace prefopt
