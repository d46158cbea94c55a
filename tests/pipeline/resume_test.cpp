// `prefopt demo --resume` and `prefopt iterate --resume` after kill -9: a run
// killed in each phase (by the test hook PREFOPT_TEST_KILL_AT, which makes the
// program raise SIGKILL on itself there) and a run killed at random times
// (seeded delays, printed) are resumed until they finish, and must then equal
// an uninterrupted run of the same seed: summary.json equal but for its
// "seconds" (wall times), every other file (pairs, metrics, models, passk)
// byte-identical, the same committed steps in the same order, no temp file
// left, and no committed step done again by a resumed process. A resume with a
// changed setting is refused with exit 2 naming the key.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "pipeline/task.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

struct Proc {
  bool killed = false;  // ended by SIGKILL
  int rc = -1;          // exit code when not killed
  double seconds = 0;
  std::string log;
};

// Runs prefopt with `args`, stdout and stderr to `log_path`; with kill_at set,
// PREFOPT_TEST_KILL_AT=kill_at; with kill_after > 0, SIGKILL after that many seconds.
Proc run(const std::vector<std::string>& args, const std::string& log_path, const std::string& kill_at = "",
        double kill_after = 0) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string exe = prefopt::testing::prefopt_exe();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1), dup2(fd, 2);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);  // one core each, like the demo's own default
    setenv("OMP_NUM_THREADS", "1", 1);
    if (kill_at.empty()) unsetenv("PREFOPT_TEST_KILL_AT");
    else setenv("PREFOPT_TEST_KILL_AT", kill_at.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int st = 0;
  if (kill_after > 0) {
    const auto deadline = t0 + std::chrono::duration<double>(kill_after);
    while (waitpid(pid, &st, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } else {
    waitpid(pid, &st, 0);
  }
  Proc r;
  r.killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.log = read_file(log_path);
  return r;
}

// A copy of a summary or state without its wall times ("seconds", at any depth).
nlohmann::json without_seconds(const nlohmann::json& j) {
  if (j.is_object()) {
    nlohmann::json o = nlohmann::json::object();
    for (auto& [k, v] : j.items())
      if (k != "seconds") o[k] = without_seconds(v);
    return o;
  }
  if (j.is_array()) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& v : j) a.push_back(without_seconds(v));
    return a;
  }
  return j;
}

std::vector<std::string> committed_steps(const std::string& dir) {
  std::vector<std::string> out;
  if (!file_exists(dir + "/run_state.json")) return out;
  const auto state = nlohmann::json::parse(read_file(dir + "/run_state.json"));
  for (auto& s : state["steps"]) out.push_back(s["step"]);
  return out;
}

// The log line a process prints only when it does `step` itself: "round2: pass@1",
// "rft round1 sampling" (a round's pairs), "sft: pass@1".
std::string step_line(const std::string& step) {
  std::string label, rest = step;
  if (step.rfind("controls/", 0) == 0) {
    const size_t slash = step.find('/', 9);
    label = step.substr(9, slash - 9) + " ";
    rest = step.substr(slash + 1);
  }
  const std::string pairs = "/pairs";
  if (rest.size() > pairs.size() && rest.compare(rest.size() - pairs.size(), pairs.size(), pairs) == 0)
    return label + rest.substr(0, rest.size() - pairs.size()) + " sampling";
  return label + rest + ": pass@1";
}

bool has_line_starting(const std::string& log, const std::string& prefix) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return true;
  return false;
}

// Files under dir (relative paths), without the ones that hold wall times.
std::set<std::string> files_under(const std::string& dir) {
  std::set<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir).string());
  return out;
}

// The resumed run `got` equals the uninterrupted `want`.
void expect_same_run(const std::string& want, const std::string& got) {
  const std::set<std::string> timed = {"summary.json", "run_state.json", "report.md", "report.html"};
  auto fw = files_under(want), fg = files_under(got);
  EXPECT_EQ(fw, fg) << "the resumed run has other files than the uninterrupted one";
  size_t compared = 0;
  for (auto& f : fg) {
    EXPECT_EQ(f.find(".tmp."), std::string::npos) << "temp file left: " << got << "/" << f;
    if (timed.count(fs::path(f).filename().string()) || !fw.count(f)) continue;
    EXPECT_TRUE(read_file(want + "/" + f) == read_file(got + "/" + f)) << f << " differs";
    ++compared;
  }
  EXPECT_GT(compared, 10u);
  auto sw = nlohmann::json::parse(read_file(want + "/summary.json"));
  auto sg = nlohmann::json::parse(read_file(got + "/summary.json"));
  EXPECT_EQ(without_seconds(sw), without_seconds(sg));
  // the same steps committed once each, in the same order, with the same entries
  auto stw = nlohmann::json::parse(read_file(want + "/run_state.json"));
  auto stg = nlohmann::json::parse(read_file(got + "/run_state.json"));
  EXPECT_EQ(without_seconds(stw["steps"]), without_seconds(stg["steps"]));
}

// Resumes `args` in dir (which must hold the run's state) with a kill hook or a
// kill after `delay` seconds; checks that no step committed before was done again.
Proc resume_once(std::vector<std::string> args, const std::string& dir, const std::string& log, const std::string& kill_at,
                double delay = 0) {
  const auto before = committed_steps(dir);
  if (!before.empty()) args.push_back("--resume");
  Proc r = run(args, log, kill_at, delay);
  for (auto& s : before) EXPECT_FALSE(has_line_starting(r.log, step_line(s))) << "step " << s << " was done again:\n" << r.log;
  EXPECT_TRUE(r.killed || r.rc == 0) << "rc " << r.rc << "\n" << r.log;
  const auto after = committed_steps(dir);
  EXPECT_GE(after.size(), before.size());
  for (size_t i = 0; i < before.size() && i < after.size(); ++i) EXPECT_EQ(before[i], after[i]);
  return r;
}

// A kill in each phase by the hook: every one must have killed the process.
void kill_in_each_phase(const std::vector<std::string>& args, const std::string& dir, const std::vector<std::string>& hooks) {
  for (auto& h : hooks) {
    Proc r = resume_once(args, dir, dir + ".log", h);
    EXPECT_TRUE(r.killed) << "PREFOPT_TEST_KILL_AT=" << h << " did not kill the run:\n" << r.log;
    if (h.rfind("pairs:", 0) == 0) {  // killed while writing pairs.jsonl: only a temp file is there
      bool temp = false;
      for (auto& f : files_under(dir)) temp |= f.find("pairs.jsonl.tmp.") != std::string::npos;
      EXPECT_TRUE(temp) << h;
    }
  }
  Proc r = resume_once(args, dir, dir + ".log", "");
  EXPECT_EQ(r.rc, 0) << r.log;
}

// Kills at random times (seeded, printed) until a run finishes.
void kill_at_random(const std::vector<std::string>& args, const std::string& dir, double full_run_seconds,
                    uint64_t seed, int max_kills) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> frac(0.1, 0.8);
  int kills = 0;
  for (int i = 0; i < 40; ++i) {
    const double delay = kills < max_kills ? frac(rng) * full_run_seconds : 0;
    std::printf("[resume test] %s: %s\n", dir.c_str(),
                delay > 0 ? ("SIGKILL after " + std::to_string(delay) + " s").c_str() : "run to the end");
    Proc r = resume_once(args, dir, dir + ".log", "", delay);
    if (!r.killed) {
      EXPECT_EQ(r.rc, 0) << r.log;
      break;
    }
    ++kills;
    std::printf("[resume test]   killed; committed: %zu step(s)\n", committed_steps(dir).size());
  }
  EXPECT_GE(kills, 1) << "no random kill landed before the run finished";
}

uint64_t test_seed() {
  const char* s = std::getenv("PREFOPT_RESUME_TEST_SEED");
  const uint64_t seed = s ? std::strtoull(s, nullptr, 10) : std::random_device{}();
  std::printf("[resume test] random kills seeded with %llu (PREFOPT_RESUME_TEST_SEED=%llu repeats them)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

std::string work_dir_path() {
  return (fs::temp_directory_path() / ("prefopt_resume_test." + std::to_string(::getpid()))).string();
}

std::string work_dir() {
  static const std::string dir = [] {
    std::string d = work_dir_path();
    remove_all(d);
    make_dirs(d);
    return d;
  }();
  return dir;
}

// The runs stay in the temp directory only when a test failed (to look at).
class RemoveWorkDirWhenPassed : public ::testing::Environment {
 public:
  void TearDown() override {
    if (::testing::UnitTest::GetInstance()->Passed()) remove_all(work_dir_path());
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new RemoveWorkDirWhenPassed);

// The small demo: --quick with a smaller pool, held-out set and SFT.
std::vector<std::string> demo_args(const std::string& out, const std::string& seed = "2") {
  return {"demo",   "--quick", "--controls",   "--seed", seed,   "--pool", "64",   "--prompts-per-round",
          "32",     "--held-out", "16", "--n", "8",   "--eval-n", "4", "--sft-steps", "40", "--output-dir", out};
}

}  // namespace

TEST(Resume, ComparisonDetectsADifference) {  // the checks below can fail
  nlohmann::json a = {{"seconds", 1.0}, {"rounds", {{{"name", "sft"}, {"seconds", 2.0}, {"pairs", 3}}}}};
  nlohmann::json b = a;
  b["seconds"] = 9.0, b["rounds"][0]["seconds"] = 8.0;
  EXPECT_EQ(without_seconds(a), without_seconds(b));
  b["rounds"][0]["pairs"] = 4;
  EXPECT_NE(without_seconds(a), without_seconds(b));
  EXPECT_EQ(step_line("round2/pairs"), "round2 sampling");
  EXPECT_EQ(step_line("controls/rft/round1/pairs"), "rft round1 sampling");
  EXPECT_EQ(step_line("controls/sft_more/round2"), "sft_more round2: pass@1");
  EXPECT_EQ(step_line("sft"), "sft: pass@1");
}

TEST(Resume, DemoSurvivesKill9) {
  const std::string w = work_dir();
  const uint64_t seed = test_seed();
  Proc ref = run(demo_args(w + "/demo-ref"), w + "/demo-ref.log");
  ASSERT_EQ(ref.rc, 0) << ref.log;
  std::printf("[resume test] uninterrupted demo: %.1f s\n", ref.seconds);
  const auto steps = committed_steps(w + "/demo-ref");
  const std::vector<std::string> want = {"sft",
                                         "round1/pairs",
                                         "round1",
                                         "round2/pairs",
                                         "round2",
                                         "controls/sft_more/round1",
                                         "controls/sft_more/round2",
                                         "controls/rft/round1/pairs",
                                         "controls/rft/round1",
                                         "controls/rft/round2/pairs",
                                         "controls/rft/round2"};
  ASSERT_EQ(steps, want);
  auto summary = nlohmann::json::parse(read_file(w + "/demo-ref/summary.json"));
  ASSERT_GT(summary["rounds"][1]["train_steps"].get<int64_t>(), 0) << "round 1 trained nothing: a weak test";

  // a kill in each phase: SFT training, its evaluation, sampling, writing pairs, training, the controls
  const std::string hooked = w + "/demo-hooks";
  kill_in_each_phase(demo_args(hooked), hooked,
                     {"train:sft", "eval:sft", "sample:round1", "pairs:round1", "train:round1", "pairs:round2",
                      "train:controls/sft_more/round1", "sample:controls/rft/round1", "train:controls/rft/round2"});
  expect_same_run(w + "/demo-ref", hooked);

  // random times
  const std::string random = w + "/demo-random";
  kill_at_random(demo_args(random), random, ref.seconds, seed, 3);
  expect_same_run(w + "/demo-ref", random);

  // negative controls: a changed setting is refused (exit 2, naming the key) and changes nothing
  const std::string state = read_file(random + "/run_state.json");
  auto args = demo_args(random, "3");
  args.push_back("--resume");
  Proc bad = run(args, w + "/bad.log");
  EXPECT_EQ(bad.rc, 2) << bad.log;
  EXPECT_NE(bad.log.find("seed was 2, now 3"), std::string::npos) << bad.log;
  args = demo_args(random);
  args.insert(args.end(), {"--beta", "0.2", "--resume"});
  bad = run(args, w + "/bad.log");
  EXPECT_EQ(bad.rc, 2) << bad.log;
  EXPECT_NE(bad.log.find("beta was 0.1, now 0.2"), std::string::npos) << bad.log;
  EXPECT_EQ(read_file(random + "/run_state.json"), state);
  // a finished run resumed does nothing again, and leftovers of a killed writer are removed, never read
  atomic_write(random + "/round1/pairs.jsonl.tmp.1.2", "{not json");
  args = demo_args(random);
  args.push_back("--resume");
  Proc again = resume_once(args, random, w + "/again.log", "");
  EXPECT_EQ(again.rc, 0) << again.log;
  expect_same_run(w + "/demo-ref", random);
}

TEST(Resume, IterateSurvivesKill9) {
  const std::string w = work_dir();
  const uint64_t seed = test_seed();
  // the model: the SFT model of a small demo (no rounds)
  const std::string model = w + "/iter-model";
  if (!file_exists(w + "/demo-ref/sft/model.safetensors")) {
    auto a = demo_args(model);
    a.insert(a.end(), {"--rounds", "0"});
    Proc m = run(a, w + "/iter-model.log");
    ASSERT_EQ(m.rc, 0) << m.log;
  } else {
    fs::create_directory_symlink(w + "/demo-ref", model);
  }
  auto splits = pipeline::make_task(5, 48, 8);
  std::vector<nlohmann::json> tr, ho;
  for (auto& t : splits.train) tr.push_back({{"question", t.question}, {"answer", t.solution}});
  for (auto& t : splits.held_out) ho.push_back({{"question", t.question}, {"answer", t.solution}});
  write_jsonl(w + "/train.jsonl", tr);
  write_jsonl(w + "/held.jsonl", ho);
  auto config = [&](const std::string& name, int seed_value) {
    const std::string path = w + "/" + name + ".toml";
    atomic_write(path, "model = \"" + model + "/sft\"\nprompts = \"" + w + "/train.jsonl\"\nheld_out = \"" + w +
                           "/held.jsonl\"\noutput_dir = \"" + w + "/" + name + "\"\nrounds = 2\nseed = " +
                           std::to_string(seed_value) +
                           "\nn_samples = 4\neval_n = 2\nmax_new_tokens = 32\nprompt_template = \"{prompt}\\nAnswer: \"\n"
                           "prompts_per_round = 16\nmax_pairs_per_prompt = 3\ncontrols = [\"rft\", \"sft_more\"]\n"
                           "sft_data = \"" + w + "/train.jsonl\"\n"
                           "[train]\nlearning_rate = 1e-4\nper_device_train_batch_size = 4\nrpo_alpha = 1.0\n");
    return std::vector<std::string>{"iterate", "--config", path};
  };
  Proc ref = run(config("iter-ref", 1), w + "/iter-ref.log");
  ASSERT_EQ(ref.rc, 0) << ref.log;
  std::printf("[resume test] uninterrupted iterate: %.1f s\n", ref.seconds);
  ASSERT_EQ(committed_steps(w + "/iter-ref").size(), 11u);  // base, 2 x (pairs, round) x 2 arms, sft_more x 2
  auto summary = nlohmann::json::parse(read_file(w + "/iter-ref/summary.json"));
  ASSERT_GT(summary["rounds"][1]["train_steps"].get<int64_t>(), 0) << "round 1 trained nothing: a weak test";

  const std::string hooked = w + "/iter-hooks";
  kill_in_each_phase(config("iter-hooks", 1), hooked,
                     {"eval:base", "sample:round1", "pairs:round1", "train:round1", "train:round2",
                      "pairs:controls/rft/round1", "train:controls/sft_more/round2"});
  // the output directory is named in the config: compare against the reference's own files
  expect_same_run(w + "/iter-ref", hooked);

  const std::string random = w + "/iter-random";
  kill_at_random(config("iter-random", 1), random, ref.seconds, seed + 1, 3);
  expect_same_run(w + "/iter-ref", random);

  // negative control: the same output directory with another seed is refused
  const std::string state = read_file(random + "/run_state.json");
  auto args = config("iter-random", 4);
  args.push_back("--resume");
  Proc bad = run(args, w + "/bad-iter.log");
  EXPECT_EQ(bad.rc, 2) << bad.log;
  EXPECT_NE(bad.log.find("seed was 1, now 4"), std::string::npos) << bad.log;
  EXPECT_EQ(read_file(random + "/run_state.json"), state);
}
