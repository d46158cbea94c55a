// prefopt dist, internal: the process-group backend (backend_c10d.cpp, the
// only file that includes c10d's headers; backend_none.cpp in builds without
// them). Collectives act on contiguous tensors in place and throw whatever
// c10d throws; dist.cpp turns that into prefopt::Error.
#pragma once
#include <chrono>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dist/dist.h"

namespace prefopt::dist::detail {

// A collective in flight; wait() returns when it is done (or throws).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void all_reduce_sum(at::Tensor& t) = 0;
  // Starts summing `t` in place; `t` must stay untouched until the Work's wait() returns.
  virtual std::unique_ptr<Work> all_reduce_sum_async(at::Tensor& t) = 0;
  virtual void all_gather(std::vector<at::Tensor>& out, at::Tensor& in) = 0;
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  virtual const char* name() const = 0;
};

// Rendezvous and process group for `e` (e.world_size > 1).
std::unique_ptr<Backend> make_backend(const Env& e, std::chrono::milliseconds timeout);

}  // namespace prefopt::dist::detail
