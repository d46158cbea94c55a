// Regressions found by the fuzz targets (docs/fuzzing.md): each input once
// made a parser crash, hang or leak an exception other than prefopt::Error
// (the CLI's exit 3). Each test asserts the user error it gives now, naming
// the file (and line or byte) and what was wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"

namespace {

std::string scratch_dir() {
  std::string d = std::string(PREFOPT_BINARY_DIR) + "/fuzz_regress." + std::to_string(::getpid());
  prefopt::make_dirs(d);
  return d;
}

// The error message of f(), or "" when it did not throw prefopt::Error.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const prefopt::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// A number outside double's range (1e400) was nlohmann's out_of_range, not a
// parse error: it escaped for_each_jsonl and the CLI exited 3.
TEST(FuzzRegress, JsonlNumberOverflowIsAUserErrorWithFileAndLine) {
  const std::string dir = scratch_dir(), path = dir + "/big.jsonl";
  prefopt::atomic_write(path, "{\"prediction\": \"#### 7\", \"answer\": \"7\"}\n{\"prediction\": 1e400, \"answer\": \"7\"}\n");
  const std::string msg = error_of([&] { prefopt::read_jsonl(path); });
  EXPECT_NE(msg.find(path + ":2"), std::string::npos) << msg;
  int rc = -1;
  const std::string out = prefopt::testing::run_prefopt("grade --kind gsm8k --input " + path, &rc, true);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find(path + ":2"), std::string::npos) << out;
  prefopt::remove_all(dir);
}
