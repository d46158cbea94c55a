// prefopt dist: data parallelism on PyTorch's c10d, with torchrun's
// environment contract (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT). When WORLD_SIZE is absent or 1 there is no
// process group and every collective below returns its input: a 1-rank run
// takes exactly the code path of a run without torchrun.
//
// Rendezvous: a c10d TCPStore at MASTER_ADDR:MASTER_PORT. Under torchrun's
// static rendezvous (TORCHELASTIC_USE_AGENT_STORE=True) the agent of node 0
// already serves that store and every rank is a client under the prefix
// /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, as torch.distributed does;
// otherwise rank 0 serves it. The group is Gloo (CPU tensors; tensors on
// another device travel through host memory) or, in builds that have it,
// NCCL for CUDA tensors.
//
// Failure: every collective waits at most ddp_timeout seconds (TRL's key).
// A dead or stuck peer turns into a prefopt::Error (exit 2) on every
// surviving rank, naming the collective and the timeout, never a hang.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace prefopt::dist {

namespace detail {
class Work;
}

// torchrun's variables, as read from the environment.
struct Env {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;   // TORCHELASTIC_USE_AGENT_STORE=True
  std::string attempt = "0";  // TORCHELASTIC_RESTART_COUNT
};

// Reads the variables; an Error naming the variable when one is malformed or
// missing while WORLD_SIZE > 1.
Env env_from_environment();

// Joins the process group when WORLD_SIZE > 1 (once per process; later calls
// do nothing). timeout_seconds: ddp_timeout.
void init(double timeout_seconds);

bool active();       // a process group of more than one rank is joined
int rank();          // 0 without a group
int world_size();    // 1 without a group
int local_rank();    // 0 without a group
bool is_main();      // rank() == 0: the rank that writes outputs
double timeout_seconds();

// Sums each tensor over the ranks, in place. Tensors are packed by dtype into
// flat buckets of at most 32 MiB (one all-reduce per bucket).
void all_reduce_sum(std::vector<at::Tensor>& tensors);
void all_reduce_sum(at::Tensor& t);

// An all-reduce in flight (all_reduce_sum_async); wait() returns when the
// sum is in place, or fails like the blocking collectives. Waiting once is
// required before the tensor is read or written; a second wait() does
// nothing. Without a group it is already done.
class Pending {
 public:
  Pending();
  explicit Pending(std::unique_ptr<detail::Work> w);
  Pending(Pending&&) noexcept;
  Pending& operator=(Pending&&) noexcept;
  ~Pending();
  void wait();

 private:
  std::unique_ptr<detail::Work> w_;
};
// Starts summing one contiguous tensor over the ranks, in place. Every rank
// must start its collectives in the same order.
Pending all_reduce_sum_async(at::Tensor& t);
// Rank r's bytes at position r, on every rank.
std::vector<std::string> all_gather_bytes(const std::string& mine);
// root's tensor into t on every rank (t must have root's shape and dtype).
void broadcast(at::Tensor& t, int root = 0);
std::string broadcast_bytes(const std::string& bytes, int root = 0);
void barrier();

// Seconds this process spent inside collectives (for asynchronous ones:
// starting them and waiting for them), and how many calls it made (an
// asynchronous collective counts twice: its start and its wait).
double comm_seconds();
int64_t comm_calls();

}  // namespace prefopt::dist
