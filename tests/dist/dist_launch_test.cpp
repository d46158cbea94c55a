// `prefopt train --nproc_per_node N`: the program starts its own local ranks
// with torchrun's contract. 2 ranks give the run of torchrun's 2 ranks and of
// 1 rank accumulating the same global batch; a killed rank or a SIGTERM to
// the launcher stop every rank and the launcher exits non-zero, naming the
// rank, leaving no process behind; bad values exit 2.
#include "dist/dist_common.h"

#include <cerrno>
#include <chrono>
#include <regex>
#include <thread>

using namespace prefopt;
using namespace prefopt::disttest;

namespace {

std::string train_args(const std::string& model, const std::string& data, const std::string& out, int accumulation,
                       const std::string& extra = "") {
  return "train --method dpo --model " + model + " --data " + data + " --output_dir " + out +
         " --per_device_train_batch_size 4 --gradient_accumulation_steps " + std::to_string(accumulation) +
         " --max_steps 5 --learning_rate 1e-3 --logging_steps 1 --save_steps 0 --seed 3 --ddp_timeout 120 " + extra;
}

// The launcher in the foreground (no torchrun variables), its stdout and stderr in `log`.
int run_launcher(const std::string& args, const std::string& log, const std::string& env = "") {
  return sh("env -u WORLD_SIZE -u RANK -u LOCAL_RANK -u LOCAL_WORLD_SIZE " + env + " " + exe() + " " + args + " > " +
            log + " 2>&1");
}

// The launcher in the background; returns its pid.
pid_t start_launcher(const std::string& args, const std::string& log) {
  pid_t p = fork();
  if (p == 0) {
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}) unsetenv(v);
    const std::string cmd = "exec " + exe() + " " + args + " > " + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return p;
}

bool wait_for(const std::function<bool()>& ok, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ok();
}

// Exit status of `p` (128 + signal when killed), waiting at most `seconds`; -1 (and killed) when still running.
int wait_exit(pid_t p, double seconds) {
  int st = 0;
  if (wait_for([&] { return waitpid(p, &st, WNOHANG) == p; }, seconds))
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  kill(p, SIGKILL);
  waitpid(p, &st, 0);
  return -1;
}

// The ranks' pids, from the launcher's "rank i is pid P" lines.
std::vector<pid_t> rank_pids(const std::string& log) {
  std::vector<pid_t> out;
  const std::regex re("launcher: rank ([0-9]+) is pid ([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it) {
    const size_t r = std::stoul((*it)[1]);
    if (out.size() <= r) out.resize(r + 1, -1);
    out[r] = static_cast<pid_t>(std::stol((*it)[2]));
  }
  return out;
}

// No such process (a rank reaped by the launcher, or killed by its death signal and reaped by init).
bool gone(pid_t p) { return kill(p, 0) == -1 && errno == ESRCH; }

}  // namespace

TEST(DistLaunch, TwoLocalRanksEqualTorchrunAndOneRankTwoAccumulation) {
  const std::string d = tmpdir("launch");
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 24, 11);
  ASSERT_EQ(run_launcher(train_args(model, data, d + "/two", 1, "--nproc_per_node 2"), d + "/two.log"), 0)
      << read_text(d + "/two.log");
  ASSERT_EQ(run_one(train_args(model, data, d + "/one", 2), d + "/one.log"), 0) << read_text(d + "/one.log");
  const std::string log = read_text(d + "/two.log");
  RunOut two = read_run(d + "/two"), one = read_run(d + "/one");
  expect_same_run(two, one, 1e-5);
  // Every rank's stderr comes back with its prefix; rank 0 alone reports the run.
  EXPECT_NE(log.find("[rank 1] "), std::string::npos) << log;
  EXPECT_NE(log.find("[rank 1] dist: rank 1 of 2"), std::string::npos) << log;
  EXPECT_NE(log.find("[rank 0] train: 2 ranks;"), std::string::npos) << log;
  EXPECT_EQ(log.find("[rank 1] train: 2 ranks;"), std::string::npos) << log;
  EXPECT_NE(log.find("prefopt train dpo: 5 steps"), std::string::npos) << "rank 0's stdout passes through\n" << log;
  EXPECT_NE(log.find("OMP_NUM_THREADS 1"), std::string::npos) << log;
  for (pid_t p : rank_pids(log)) EXPECT_TRUE(gone(p)) << p;
  const std::string tr = torchrun_path();
  if (tr.empty()) return;  // torchrun's contract by hand is what the launcher does
  ASSERT_EQ(run_torchrun(2, train_args(model, data, d + "/tr", 1), d + "/tr.log"), 0) << ranks_log(d + "/tr.log");
  RunOut tr_run = read_run(d + "/tr");
  expect_same_run(two, tr_run, 0.0);  // the same processes: the same bits
  EXPECT_EQ(max_weight_diff(two, tr_run), 0.0);
}

namespace {

// A long run of 2 local ranks, stopped by `stop` once rank 0 logged a step.
void stopped_launch(const std::string& name, const std::function<void(pid_t launcher, const std::vector<pid_t>&)>& stop,
                    const std::function<void(int rc, const std::string& log, const std::vector<pid_t>&)>& check) {
  const std::string d = tmpdir(name);
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 24, 5);
  std::string args = train_args(model, data, d + "/out", 1, "--nproc_per_node 2");
  args.replace(args.find("--max_steps 5"), 13, "--max_steps 100000");
  const pid_t launcher = start_launcher(args, d + "/log");
  ASSERT_TRUE(wait_for([&] { return read_text(d + "/out/metrics.jsonl").find('\n') != std::string::npos; }, 90))
      << read_text(d + "/log");
  const std::vector<pid_t> pids = rank_pids(read_text(d + "/log"));
  ASSERT_EQ(pids.size(), 2u) << read_text(d + "/log");
  stop(launcher, pids);
  const int rc = wait_exit(launcher, 30);
  const std::string log = read_text(d + "/log");
  // No rank outlives the launcher (the ranks die with it at the latest).
  for (pid_t p : pids) {
    EXPECT_TRUE(wait_for([&] { return gone(p); }, 5)) << "rank pid " << p << " is still there\n" << log;
    if (!gone(p)) kill(p, SIGKILL);
  }
  check(rc, log, pids);
}

}  // namespace

TEST(DistLaunch, KilledRankStopsTheOtherAndTheLauncherFailsNamingIt) {
  stopped_launch(
      "launch_kill", [](pid_t, const std::vector<pid_t>& pids) { kill(pids[1], SIGKILL); },
      [](int rc, const std::string& log, const std::vector<pid_t>& pids) {
        EXPECT_NE(rc, 0) << log;
        EXPECT_NE(rc, -1) << "the launcher did not exit within 30 s\n" << log;
        EXPECT_NE(log.find("prefopt: error: rank 1 of 2 (pid " + std::to_string(pids[1]) + ") was killed by signal 9"),
                  std::string::npos)
            << log;
      });
}

TEST(DistLaunch, SigtermToTheLauncherStopsEveryRank) {
  stopped_launch(
      "launch_term", [](pid_t launcher, const std::vector<pid_t>&) { kill(launcher, SIGTERM); },
      [](int rc, const std::string& log, const std::vector<pid_t>&) {
        EXPECT_EQ(rc, 128 + SIGTERM) << log;
        EXPECT_NE(log.find("passing it to the ranks"), std::string::npos) << log;
      });
}

TEST(DistLaunch, BadValuesExitTwo) {
  const std::string d = tmpdir("launch_bad");
  const std::string a = train_args(d + "/no_model", d + "/no_data.jsonl", d + "/out", 1);
  for (const char* v : {"0", "-1", "two", "2x"}) {
    EXPECT_EQ(run_launcher(a + " --nproc_per_node " + v, d + "/log"), 2) << v << "\n" << read_text(d + "/log");
    EXPECT_NE(read_text(d + "/log").find("--nproc_per_node"), std::string::npos) << read_text(d + "/log");
  }
  EXPECT_EQ(run_launcher(a + " --nproc_per_node 2 --master_port 70000", d + "/log"), 2) << read_text(d + "/log");
  EXPECT_NE(read_text(d + "/log").find("--master_port"), std::string::npos) << read_text(d + "/log");
  // Under a launcher that already set torchrun's variables.
  EXPECT_EQ(sh("env WORLD_SIZE=2 RANK=0 " + exe() + " " + a + " --nproc_per_node 2 > " + d + "/log 2>&1"), 2);
  EXPECT_NE(read_text(d + "/log").find("is already set"), std::string::npos) << read_text(d + "/log");
  // The negative control: N = 1 runs in this process and fails later, on the missing model.
  EXPECT_EQ(run_launcher(a + " --nproc_per_node 1", d + "/log"), 2);
  EXPECT_EQ(read_text(d + "/log").find("--nproc_per_node"), std::string::npos) << read_text(d + "/log");
}
