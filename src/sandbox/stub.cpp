// Temporary: the isolated runner lands next; until then every run is SANDBOX_ERROR.
#include "sandbox/sandbox.h"

namespace prefopt {
namespace {
RunResult not_ready() {
  RunResult r;
  r.detail = "sandbox not implemented yet in this checkout";
  r.isolation = "none";
  return r;
}
}  // namespace
RunResult run_python(const std::string&, const Limits&) { return not_ready(); }
RunResult run_tests(const std::string&, const std::string&, const Limits&) { return not_ready(); }
std::string isolation_report() { return "not detected yet"; }
std::string isolation_level() { return "none"; }
struct SandboxPool::Impl {
  int workers;
  Limits limits;
};
SandboxPool::SandboxPool(int workers, Limits limits) : impl_(new Impl{workers, limits}) {}
SandboxPool::~SandboxPool() = default;
std::vector<RunResult> SandboxPool::run_all(const std::vector<std::string>& p) {
  return std::vector<RunResult>(p.size(), not_ready());
}
std::vector<RunResult> SandboxPool::run_tests_all(const std::vector<TestJob>& j) {
  return std::vector<RunResult>(j.size(), not_ready());
}
int SandboxPool::workers() const { return impl_->workers; }
const Limits& SandboxPool::limits() const { return impl_->limits; }
}  // namespace prefopt
