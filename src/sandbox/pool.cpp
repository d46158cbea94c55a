// SandboxPool: N worker threads, each owning one Worker (one zygote), fed
// from one queue; run_python / run_tests use a process-wide pool created on
// first use, so repeated single runs (the tool-call loop) also skip the
// interpreter start.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "sandbox/sandbox_impl.h"

namespace prefopt {

using sandbox_detail::Worker;

namespace {

std::atomic<int> g_worker_ids{0};

struct Batch {
  std::mutex mu;
  std::condition_variable cv;
  size_t remaining = 0;
};

struct Task {
  const std::string* code;
  const std::string* test;
  char mode;  // Worker::run's mode
  const std::vector<std::string>* names;  // TestJob::entry_points (nullptr: none)
  Limits limits;
  RunResult* out;
  Batch* batch;
};

}  // namespace

struct SandboxPool::Impl {
  Limits limits;
  int n = 1;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> queue;
  bool stop = false;
  std::vector<std::thread> threads;

  void loop() {
    Worker w(g_worker_ids.fetch_add(1));
    for (;;) {
      Task t;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        t = queue.front();
        queue.pop_front();
      }
      RunResult r = w.run(*t.code, t.test ? *t.test : std::string(), t.mode, t.limits, t.names ? *t.names : std::vector<std::string>{});
      *t.out = std::move(r);
      std::lock_guard<std::mutex> lk(t.batch->mu);
      if (--t.batch->remaining == 0) t.batch->cv.notify_all();
    }
  }

  void submit_and_wait(std::vector<Task>& tasks) {
    if (tasks.empty()) return;
    Batch b;
    b.remaining = tasks.size();
    {
      std::lock_guard<std::mutex> lk(mu);
      for (auto& t : tasks) {
        t.batch = &b;
        queue.push_back(t);
      }
    }
    cv.notify_all();
    std::unique_lock<std::mutex> lk(b.mu);
    b.cv.wait(lk, [&] { return b.remaining == 0; });
  }
};

SandboxPool::SandboxPool(int workers, Limits limits) : impl_(new Impl) {
  impl_->limits = limits;
  impl_->n = std::max(1, workers);
  for (int i = 0; i < impl_->n; ++i) impl_->threads.emplace_back([this] { impl_->loop(); });
}

SandboxPool::~SandboxPool() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

std::vector<RunResult> SandboxPool::run_all(const std::vector<std::string>& programs) {
  std::vector<RunResult> out(programs.size());
  std::vector<Task> tasks;
  for (size_t i = 0; i < programs.size(); ++i) tasks.push_back({&programs[i], nullptr, 'p', nullptr, impl_->limits, &out[i], nullptr});
  impl_->submit_and_wait(tasks);
  return out;
}

std::vector<RunResult> SandboxPool::run_tests_all(const std::vector<TestJob>& jobs) {
  std::vector<RunResult> out(jobs.size());
  std::vector<Task> tasks;
  for (size_t i = 0; i < jobs.size(); ++i)
    tasks.push_back({&jobs[i].code, &jobs[i].test_code, 't', &jobs[i].entry_points, impl_->limits, &out[i], nullptr});
  impl_->submit_and_wait(tasks);
  return out;
}

RunResult SandboxPool::run(const std::string& program, const Limits& limits) {
  RunResult r;
  std::vector<Task> t{{&program, nullptr, 'p', nullptr, limits, &r, nullptr}};
  impl_->submit_and_wait(t);
  return r;
}

RunResult SandboxPool::run_tests(const std::string& code, const std::string& test_code, const Limits& limits,
                                 const std::vector<std::string>& entry_points) {
  RunResult r;
  std::vector<Task> t{{&code, &test_code, 't', &entry_points, limits, &r, nullptr}};
  impl_->submit_and_wait(t);
  return r;
}

RunResult SandboxPool::run_with_prelude(const std::string& prelude, const std::string& program, const Limits& limits) {
  RunResult r;
  std::vector<Task> t{{&prelude, &program, 'u', nullptr, limits, &r, nullptr}};
  impl_->submit_and_wait(t);
  return r;
}

int SandboxPool::workers() const { return impl_->n; }
const Limits& SandboxPool::limits() const { return impl_->limits; }

namespace {

// The process-wide pool behind run_python / run_tests (per-call limits).
struct DefaultPool {
  SandboxPool pool{static_cast<int>(std::max(2u, std::thread::hardware_concurrency()))};
};
DefaultPool& default_pool() {
  static DefaultPool p;
  return p;
}

}  // namespace

RunResult run_python(const std::string& program, const Limits& limits) {
  return default_pool().pool.run(program, limits);
}

RunResult run_tests(const std::string& code, const std::string& test_code, const Limits& limits,
                    const std::vector<std::string>& entry_points) {
  return default_pool().pool.run_tests(code, test_code, limits, entry_points);
}

RunResult run_python_with_prelude(const std::string& prelude, const std::string& program, const Limits& limits) {
  return default_pool().pool.run_with_prelude(prelude, program, limits);
}

}  // namespace prefopt
