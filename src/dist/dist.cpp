#include "dist/dist.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "dist/backend.h"

namespace prefopt::dist {

namespace {

struct State {
  Env env;
  double timeout_s = 0;
  std::unique_ptr<detail::Backend> backend;  // null: one rank
  double comm_s = 0;
  int64_t calls = 0;
};

// Never destroyed: at exit the group's threads may still hold sockets to a
// dead peer, and joining them must not delay or hang the exit.
State& state() {
  static State* s = new State;
  return *s;
}

int env_int(const char* name, int def, bool required) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (required) fail(name, "is not set, but WORLD_SIZE > 1", "launch with torchrun, which sets RANK, WORLD_SIZE, "
                                                               "LOCAL_RANK, MASTER_ADDR and MASTER_PORT");
    return def;
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > (1 << 30)) fail(name, fmt::format("\"{}\" is not a non-negative integer", v), "");
  return static_cast<int>(x);
}

// Runs one collective, timing it and turning c10d's exceptions (c10::Error on
// a timeout, gloo's IoException wrapped in one on a closed connection) into
// an Error that names the timeout.
template <class F>
void guarded(const char* what, F&& f) {
  State& s = state();
  const double t0 = now_seconds();
  try {
    f();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    fail(fmt::format("rank {} of {}", s.env.rank, s.env.world_size),
         fmt::format("{} failed: {}", what, msg),
         fmt::format("a peer rank died or did not answer within ddp_timeout = {} s; look at the other ranks' output "
                     "for the first error (raise ddp_timeout when a rank legitimately works that long alone)",
                     s.timeout_s));
  }
  s.comm_s += now_seconds() - t0;
  ++s.calls;
}

}  // namespace

Env env_from_environment() {
  Env e;
  e.world_size = std::max(1, env_int("WORLD_SIZE", 1, false));
  if (e.world_size == 1) return e;
  e.rank = env_int("RANK", 0, true);
  e.local_rank = env_int("LOCAL_RANK", 0, false);
  e.local_world_size = std::max(1, env_int("LOCAL_WORLD_SIZE", 1, false));
  e.master_port = env_int("MASTER_PORT", 0, true);
  const char* a = std::getenv("MASTER_ADDR");
  if (!a || !*a) fail("MASTER_ADDR", "is not set, but WORLD_SIZE > 1", "launch with torchrun, or set MASTER_ADDR");
  e.master_addr = a;
  if (e.rank >= e.world_size)
    fail("RANK", fmt::format("{} is not below WORLD_SIZE {}", e.rank, e.world_size), "check the launcher's settings");
  if (e.master_port <= 0 || e.master_port > 65535)
    fail("MASTER_PORT", fmt::format("{} is not a TCP port", e.master_port), "pass a port in 1..65535");
  const char* as = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = as && std::string(as) == "True";
  if (const char* rc = std::getenv("TORCHELASTIC_RESTART_COUNT"); rc && *rc) e.attempt = rc;
  return e;
}

void init(double timeout_seconds) {
  State& s = state();
  if (s.backend || s.env.world_size > 1) return;
  Env e = env_from_environment();
  s.timeout_s = timeout_seconds;
  if (e.world_size == 1) return;
  PREFOPT_REQUIRE(timeout_seconds > 0, "ddp_timeout", "must be > 0 seconds", "the default is 1800");
  s.env = e;
  const auto ms = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  guarded("rendezvous", [&] { s.backend = detail::make_backend(e, ms); });
  info("dist: rank {} of {} (local {} of {}), {} process group via {}:{}, ddp_timeout {} s", e.rank, e.world_size,
       e.local_rank, e.local_world_size, s.backend->name(), e.master_addr, e.master_port, timeout_seconds);
}

bool active() { return state().backend != nullptr; }
int rank() { return active() ? state().env.rank : 0; }
int world_size() { return active() ? state().env.world_size : 1; }
int local_rank() { return active() ? state().env.local_rank : 0; }
bool is_main() { return rank() == 0; }
double timeout_seconds() { return state().timeout_s; }
double comm_seconds() { return state().comm_s; }
int64_t comm_calls() { return state().calls; }

void all_reduce_sum(std::vector<at::Tensor>& tensors) {
  if (!active() || tensors.empty()) return;
  constexpr int64_t kBucketBytes = int64_t{32} << 20;
  at::NoGradGuard g;
  size_t i = 0;
  while (i < tensors.size()) {
    // A bucket: consecutive tensors of one dtype and device, up to kBucketBytes.
    size_t j = i;
    int64_t bytes = 0;
    while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() &&
           tensors[j].device() == tensors[i].device() &&
           (j == i || bytes + tensors[j].numel() * tensors[j].element_size() <= kBucketBytes))
      bytes += tensors[j].numel() * tensors[j].element_size(), ++j;
    std::vector<at::Tensor> flat;
    for (size_t k = i; k < j; ++k) flat.push_back(tensors[k].reshape({-1}));
    at::Tensor bucket = at::cat(flat);
    guarded("all_reduce", [&] { state().backend->all_reduce_sum(bucket); });
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].copy_(bucket.narrow(0, off, n).view(tensors[k].sizes()));
      off += n;
    }
    i = j;
  }
}

void all_reduce_sum(at::Tensor& t) {
  std::vector<at::Tensor> v{t};
  all_reduce_sum(v);
}

Pending::Pending() = default;
Pending::Pending(std::unique_ptr<detail::Work> w) : w_(std::move(w)) {}
Pending::Pending(Pending&&) noexcept = default;
Pending& Pending::operator=(Pending&&) noexcept = default;
Pending::~Pending() = default;

void Pending::wait() {
  if (!w_) return;
  std::unique_ptr<detail::Work> w = std::move(w_);
  guarded("all_reduce", [&] { w->wait(); });
}

Pending all_reduce_sum_async(at::Tensor& t) {
  if (!active()) return Pending();
  PREFOPT_ASSERT(t.is_contiguous(), "all_reduce_sum_async needs a contiguous tensor");
  std::unique_ptr<detail::Work> w;
  guarded("all_reduce", [&] { w = state().backend->all_reduce_sum_async(t); });
  return Pending(std::move(w));
}

std::vector<std::string> all_gather_bytes(const std::string& mine) {
  if (!active()) return {mine};
  const int W = world_size();
  at::Tensor n = at::full({1}, static_cast<int64_t>(mine.size()), at::kLong);
  std::vector<at::Tensor> sizes(W);
  for (auto& t : sizes) t = at::empty({1}, at::kLong);
  guarded("all_gather", [&] { state().backend->all_gather(sizes, n); });
  int64_t mx = 1;
  for (auto& t : sizes) mx = std::max(mx, t.item<int64_t>());
  at::Tensor in = at::zeros({mx}, at::kByte);
  std::memcpy(in.data_ptr(), mine.data(), mine.size());
  std::vector<at::Tensor> out(W);
  for (auto& t : out) t = at::empty({mx}, at::kByte);
  guarded("all_gather", [&] { state().backend->all_gather(out, in); });
  std::vector<std::string> res(W);
  for (int r = 0; r < W; ++r)
    res[r].assign(static_cast<const char*>(out[r].data_ptr()), static_cast<size_t>(sizes[r].item<int64_t>()));
  return res;
}

void broadcast(at::Tensor& t, int root) {
  if (!active()) return;
  at::NoGradGuard g;
  at::Tensor c = t.contiguous();
  guarded("broadcast", [&] { state().backend->broadcast(c, root); });
  if (!c.is_same(t)) t.copy_(c);
}

std::string broadcast_bytes(const std::string& bytes, int root) {
  if (!active()) return bytes;
  at::Tensor n = at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong);
  broadcast(n, root);
  const int64_t len = n.item<int64_t>();
  at::Tensor buf = at::zeros({std::max<int64_t>(1, len)}, at::kByte);
  if (rank() == root) std::memcpy(buf.data_ptr(), bytes.data(), bytes.size());
  broadcast(buf, root);
  return std::string(static_cast<const char*>(buf.data_ptr()), static_cast<size_t>(len));
}

void barrier() {
  if (!active()) return;
  guarded("barrier", [&] { state().backend->barrier(); });
}

}  // namespace prefopt::dist
