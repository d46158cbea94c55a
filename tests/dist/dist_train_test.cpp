// Data-parallel `prefopt train` on loopback: 2 ranks x accumulation 1 equal
// 1 rank x accumulation 2 (DPO with an eval split, KTO with precomputed
// reference log-probs, BCO: losses, every metric and the final weights), 2
// "nodes" of one rank each, a dead or stuck peer, and --resume of a 2-rank
// checkpoint on 1 rank.
#include "dist/dist_common.h"

#include <chrono>
#include <thread>

using namespace prefopt;
using namespace prefopt::disttest;

namespace {

std::string train_args(const std::string& method, const std::string& model, const std::string& data,
                       const std::string& out, int accumulation, const std::string& extra = "") {
  return "train --method " + method + " --model " + model + " --data " + data + " --output_dir " + out +
         " --per_device_train_batch_size 4 --gradient_accumulation_steps " + std::to_string(accumulation) +
         " --max_steps 5 --learning_rate 1e-3 --logging_steps 1 --save_steps 0 --seed 3 --ddp_timeout 120 " + extra;
}

// 1 rank x accumulation 2 against 2 ranks x accumulation 1, and the negative
// control 1 rank x accumulation 1 (another global batch): it must differ.
void two_ranks_equal_accumulation(const std::string& name, const std::string& method, bool paired,
                                  const std::string& extra) {
  const std::string d = tmpdir(name);
  const std::string model = tiny_model(d);
  // Each run its own copy of the data: a precomputed reference cache beside it is computed by that run.
  for (const char* r : {"one", "two", "ctl"}) {
    fs::create_directories(d + "/" + r);
    write_data(d + "/" + r + "/data.jsonl", paired, 24, 11);
  }
  ASSERT_EQ(run_one(train_args(method, model, d + "/one/data.jsonl", d + "/one/out", 2, extra), d + "/one.log"), 0)
      << read_text(d + "/one.log");
  ASSERT_EQ(run_torchrun(2, train_args(method, model, d + "/two/data.jsonl", d + "/two/out", 1, extra), d + "/two.log"),
            0)
      << ranks_log(d + "/two.log");
  ASSERT_EQ(run_one(train_args(method, model, d + "/ctl/data.jsonl", d + "/ctl/out", 1, extra), d + "/ctl.log"), 0);
  RunOut one = read_run(d + "/one/out"), two = read_run(d + "/two/out"), ctl = read_run(d + "/ctl/out");
  expect_same_run(one, two, 1e-5);
  EXPECT_GT(max_weight_diff(one, ctl), 1e-4) << "the control trains on other batches";
  // Rank 0 alone wrote the outputs, and says so once.
  const std::string log = ranks_log(d + "/two.log");
  EXPECT_NE(log.find("train: 2 ranks;"), std::string::npos) << log;
  EXPECT_NE(log.find("dist: rank 1 of 2"), std::string::npos) << log;
}

}  // namespace

TEST(DistTrain, DpoTwoRanksEqualOneRankTwoAccumulation) {
  two_ranks_equal_accumulation("dpo", "dpo", true, "--eval_split 0.25 --eval_steps 2");
}

TEST(DistTrain, KtoTwoRanksEqualOneRankTwoAccumulation) {
  two_ranks_equal_accumulation("kto", "kto", false, "--precompute_ref_log_probs");
}

TEST(DistTrain, BcoTwoRanksEqualOneRankTwoAccumulation) {
  two_ranks_equal_accumulation("bco", "bco", false, "");
}

// Two torchrun agents, --nnodes 2 --node_rank 0/1, rendezvous on 127.0.0.1
// (torchrun's static rendezvous: the agent of node 0 serves the store).
TEST(DistTrain, TwoNodesOfOneRankEqualOneRank) {
  const std::string tr = torchrun_path();
  if (tr.empty()) GTEST_SKIP() << "torchrun is not installed";
  const std::string d = tmpdir("nodes");
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 24, 5);
  ASSERT_EQ(run_one(train_args("dpo", model, data, d + "/one", 2), d + "/one.log"), 0);
  const int port = free_port();
  auto node = [&](int r) {
    return "OMP_NUM_THREADS=1 " + tr + " --no_python --nnodes 2 --node_rank " + std::to_string(r) +
           " --nproc_per_node 1 --master_addr 127.0.0.1 --master_port " + std::to_string(port) +
           " --redirects 2 --tee 1 --log_dir " + d + "/node" + std::to_string(r) + ".log.d " + exe() + " " +
           train_args("dpo", model, data, d + "/two", 1) + " > " + d + "/node" + std::to_string(r) + ".log 2>&1";
  };
  ASSERT_EQ(sh("(" + node(0) + " & " + node(1) + "; r1=$?; wait %1; r0=$?; exit $((r0 + r1)))"), 0)
      << ranks_log(d + "/node0.log") << ranks_log(d + "/node1.log");
  expect_same_run(read_run(d + "/one"), read_run(d + "/two"), 1e-5);
}

namespace {

// Starts rank r of 2 by hand (torchrun's variables) with `args`; returns its pid.
pid_t start_rank(int r, int port, const std::string& args, const std::string& log) {
  pid_t p = fork();
  if (p == 0) {
    setenv("RANK", std::to_string(r).c_str(), 1), setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
    setenv("WORLD_SIZE", "2", 1), setenv("LOCAL_WORLD_SIZE", "2", 1), setenv("OMP_NUM_THREADS", "1", 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1), setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    const std::string cmd = "exec " + exe() + " " + args + " > " + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return p;
}

// Waits until `path` has a line, up to `seconds`.
bool wait_for_line(const std::string& path, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (read_text(path).find('\n') != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Exit status of `p`, waiting at most `seconds` (-1 when it is still running; it is then killed).
int wait_exit(pid_t p, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int st = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (waitpid(p, &st, WNOHANG) == p) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(p, SIGKILL);
  waitpid(p, &st, 0);
  return -1;
}

// A dead peer (kill -9) or a stuck one (SIGSTOP): the survivor stops with exit
// 2 and a message naming the collective and ddp_timeout, instead of hanging.
void peer_failure(const std::string& name, int sig) {
  const std::string d = tmpdir(name);
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 24, 5);
  std::string args = train_args("dpo", model, data, d + "/out", 1, "");
  args.replace(args.find("--max_steps 5"), 13, "--max_steps 100000");
  args.replace(args.find("--ddp_timeout 120"), 17, "--ddp_timeout 4");
  const int port = free_port();
  pid_t r0 = start_rank(0, port, args, d + "/r0.log"), r1 = start_rank(1, port, args, d + "/r1.log");
  ASSERT_TRUE(wait_for_line(d + "/out/metrics.jsonl", 60)) << read_text(d + "/r0.log") << read_text(d + "/r1.log");
  const auto t0 = std::chrono::steady_clock::now();
  kill(r1, sig);
  const int rc = wait_exit(r0, 30);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  kill(r1, SIGKILL);
  waitpid(r1, nullptr, 0);
  const std::string log = read_text(d + "/r0.log");
  EXPECT_EQ(rc, 2) << log;
  // Whichever collective rank 0 was in (the gradients' all-reduce, the metrics' all-gather).
  EXPECT_NE(log.find("prefopt: error: rank 0 of 2: all_"), std::string::npos) << log;
  EXPECT_NE(log.find(" failed: "), std::string::npos) << log;
  EXPECT_NE(log.find("ddp_timeout = 4 s"), std::string::npos) << log;
  if (sig == SIGSTOP) {
    EXPECT_GE(waited, 3.5) << "a stuck peer is waited for ddp_timeout seconds";
  }
}

}  // namespace

TEST(DistTrain, KilledRankMakesTheOtherFailNamingTheTimeout) { peer_failure("kill", SIGKILL); }

TEST(DistTrain, StuckRankMakesTheOtherFailAfterTheTimeout) { peer_failure("stop", SIGSTOP); }

// A checkpoint of a 2-rank run (accumulation 1) resumed on 1 rank with
// accumulation 2 (the same global batch) continues the same trajectory.
TEST(DistTrain, ResumeTwoRankCheckpointOnOneRank) {
  const std::string d = tmpdir("resume");
  const std::string model = tiny_model(d);
  const std::string data = write_data(d + "/data.jsonl", true, 24, 9);
  std::string two = train_args("dpo", model, data, d + "/two", 1);
  two.replace(two.find("--save_steps 0"), 14, "--save_steps 2");
  ASSERT_EQ(run_torchrun(2, two, d + "/two.log"), 0) << ranks_log(d + "/two.log");
  ASSERT_TRUE(fs::exists(d + "/two/checkpoint-2/trainer_state.json"));
  auto st = json::parse(read_text(d + "/two/checkpoint-2/trainer_state.json"));
  EXPECT_EQ(st["world_size"], 2);
  EXPECT_EQ(st["micro_batches_per_step"], 2);
  // The resumed run: its output_dir holds the 2-rank run's first two metric lines and checkpoint-2.
  fs::create_directories(d + "/one");
  fs::copy(d + "/two/checkpoint-2", d + "/one/checkpoint-2", fs::copy_options::recursive);
  std::vector<json> head(read_jsonl(d + "/two/metrics.jsonl"));
  head.resize(2);
  write_jsonl(d + "/one/metrics.jsonl", head);
  std::string one = train_args("dpo", model, data, d + "/one", 2);
  one.replace(one.find("--save_steps 0"), 14, "--save_steps 2");
  ASSERT_EQ(run_one(one + " --resume", d + "/one.log"), 0) << read_text(d + "/one.log");
  const std::string log = read_text(d + "/one.log");
  EXPECT_EQ(log.find("gradient_accumulation_steps"), std::string::npos) << "same global batch: no warning\n" << log;
  expect_same_run(read_run(d + "/two"), read_run(d + "/one"), 1e-5);
}
