// prefopt model: mixed precision and the dtype flags.
//
// --bf16 (TRL's flag) trains with fp32 master weights and fp32 AdamW moments;
// inside an Autocast scope the matmuls (linear, matmul, addmm, ...) run in
// bf16 on casts of those weights (ATen autocast: CPU through oneDNN, CUDA
// natively) while norms, softmax and the log-prob head stay fp32 (the head
// runs under Autocast(false)). --torch_dtype names the dtype models are
// loaded in (generate, logprobs) or saved in (train's final model).
#pragma once
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace prefopt {

// Scope guard: autocast on (to `dtype`) or off for `device`'s type, restored
// (and the cast-weight cache cleared) at the end of the scope.
class Autocast {
 public:
  Autocast(bool on, c10::Device device, c10::ScalarType dtype = c10::kBFloat16);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool cuda_, was_on_;
  c10::ScalarType was_dtype_;
};

// "float32" | "bfloat16" | "float16" (also "fp32", "bf16", "fp16", "float",
// "half"); "auto" gives `auto_dtype`. Errors name `origin`.
c10::ScalarType parse_torch_dtype(const std::string& s, const std::string& origin,
                                  c10::ScalarType auto_dtype = c10::kFloat);
// HF's config.json spelling: "float32", "bfloat16", "float16".
const char* torch_dtype_name(c10::ScalarType t);

}  // namespace prefopt
