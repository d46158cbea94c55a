// prefopt dist: the c10d backend. TCPStore rendezvous, ProcessGroupGloo for
// CPU tensors and, when built with PREFOPT_HAVE_NCCL, ProcessGroupNCCL for
// CUDA tensors (both groups on the same store, under their own prefixes).
#include "dist/backend.h"

#include <ATen/ATen.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef PREFOPT_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "core/error.h"

namespace prefopt::dist::detail {

namespace {

// c10d's Work of one collective (it holds the tensors until it completes).
class C10dWork : public Work {
 public:
  explicit C10dWork(c10::intrusive_ptr<c10d::Work> w) : w_(std::move(w)) {}
  void wait() override { w_->wait(); }

 private:
  c10::intrusive_ptr<c10d::Work> w_;
};

class C10dBackend : public Backend {
 public:
  C10dBackend(const Env& e, std::chrono::milliseconds timeout) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(e.master_port);
    so.isServer = !e.agent_store && e.rank == 0;
    so.numWorkers = e.agent_store ? c10::nullopt : c10::optional<std::size_t>(e.world_size);
    so.waitWorkers = !e.agent_store;
    so.timeout = timeout;
    so.multiTenant = !e.agent_store;
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(e.master_addr, so);
    if (e.agent_store) store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + e.attempt, store);
    store->setTimeout(timeout);
    auto go = c10d::ProcessGroupGloo::Options::create(timeout);
    // The interface that reaches MASTER_ADDR's network: this host's name, or loopback when it is local.
    go->devices.push_back(e.master_addr == "127.0.0.1" || e.master_addr == "localhost"
                              ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                              : c10d::ProcessGroupGloo::createDefaultDevice());
    go->threads = 2;
    gloo_ = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store), e.rank,
                                                         e.world_size, go);
#ifdef PREFOPT_HAVE_NCCL
    if (at::hasCUDA()) {
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = timeout;
      nccl_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), e.rank,
                                                          e.world_size, no);
    }
#endif
  }

  void all_reduce_sum(at::Tensor& t) override {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    group(t)->allreduce(v, o)->wait();
  }
  std::unique_ptr<Work> all_reduce_sum_async(at::Tensor& t) override {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    return std::make_unique<C10dWork>(group(t)->allreduce(v, o));
  }
  void all_gather(std::vector<at::Tensor>& out, at::Tensor& in) override {
    std::vector<std::vector<at::Tensor>> o{out};
    std::vector<at::Tensor> i{in};
    group(in)->allgather(o, i)->wait();
    out = o[0];
  }
  void broadcast(at::Tensor& t, int root) override {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    group(t)->broadcast(v, o)->wait();
  }
  void barrier() override { gloo_->barrier()->wait(); }
  const char* name() const override { return nccl_ ? "gloo+nccl" : "gloo"; }

 private:
  c10d::ProcessGroup* group(const at::Tensor& t) {
    if (nccl_ && t.is_cuda()) return nccl_.get();
    return gloo_.get();
  }
  c10::intrusive_ptr<c10d::ProcessGroup> gloo_, nccl_;
};

}  // namespace

std::unique_ptr<Backend> make_backend(const Env& e, std::chrono::milliseconds timeout) {
  return std::make_unique<C10dBackend>(e, timeout);
}

}  // namespace prefopt::dist::detail
