// prefopt pipeline: a run's progress on disk, so `demo --resume` and
// `iterate --resume` continue a run that was killed at any point (kill -9
// included) and finish with what an uninterrupted run writes.
//
// A run is a sequence of steps (the SFT or base model; each round; each
// control's round), each with its own directory under DIR. DIR/run_state.json
// lists the committed steps, each with its summary.json entry, and the run's
// configuration. A step is committed only after every file of its directory
// is written and fsynced: the state file is rewritten atomically (temp file,
// fsync, rename) last. On resume:
//   - the configuration must be the one the run was started with (a changed
//     key is a user error naming it, exit 2; `rounds` may grow or shrink),
//   - committed steps are skipped (their entries and files are used as they
//     are), an uncommitted step is redone from its start in an emptied
//     directory: the seeds depend only on (seed, round, prompt, sample index),
//     so the redone work is identical,
//   - temp files a killed process left (NAME.tmp.*, from core/fs.h's atomic
//     writes, files or directories) anywhere under DIR are removed first.
// "seconds" in entries (and summary.json's top-level "seconds") are wall
// times: the only values that differ from an uninterrupted run.
#pragma once
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"

namespace prefopt::pipeline {

class RunState {
 public:
  // resume = false: a fresh run; an earlier state in dir is replaced by one
  // recording `config`. resume = true: continues the state in dir (a dir
  // without one starts fresh, unless it holds a summary.json: a run of an
  // older prefopt, refused). Keys of `config` in `may_change` may differ.
  RunState(const std::string& dir, const std::string& command, const nlohmann::json& config, bool resume,
           const std::vector<std::string>& may_change = {"rounds"});

  bool done(const std::string& step) const;
  const nlohmann::json& entry(const std::string& step) const;  // the committed summary entry
  // Commits `step`: fsyncs every file under step_dir (when given), then
  // rewrites run_state.json atomically with the step and its entry.
  void commit(const std::string& step, const nlohmann::json& entry, const std::string& step_dir = "");
  // Steps committed by earlier processes, in order, and the sum of their "seconds".
  const std::vector<std::string>& resumed_steps() const { return resumed_; }
  double resumed_seconds() const;
  const std::string& path() const { return path_; }

 private:
  void load(const std::string& command, const nlohmann::json& config, bool resume,
            const std::vector<std::string>& may_change);
  void write() const;
  std::string dir_, path_;
  nlohmann::json state_;  // {"command", "config", "steps": [{"step", "entry"}]}
  std::vector<std::string> resumed_;
};

// Empties a step's directory before the step is (re)done; the _keeping form
// keeps one committed file of it (a round's pairs.jsonl when only training and
// evaluation are redone).
void reset_step_dir(const std::string& dir);
void reset_step_dir_keeping(const std::string& dir, const std::string& keep);

// A round's committed pairs.jsonl (pipeline/loop.h's pre-tokenized rows with
// their loss masks) as the Dataset the round trained on.
Dataset read_round_rows(const std::string& path, DataKind kind);

// Removes temp files and directories (NAME.tmp.*) left under dir by a killed process.
void remove_temp_files(const std::string& dir);

// Test hook: when the environment variable PREFOPT_TEST_KILL_AT is
// "<phase>:<step>" (e.g. "sample:round2", "pairs:round1", "eval:sft"), the
// process raises SIGKILL on itself at that point.
bool test_kill_armed(const std::string& phase, const std::string& step);
void test_kill_point(const std::string& phase, const std::string& step);

// Test hook for "train:<step>": while alive, a thread raises SIGKILL once
// metrics_path has a line (training is under way); if training ends first,
// the destructor raises it. Does nothing unless armed.
class TestKillWhileTraining {
 public:
  TestKillWhileTraining(const std::string& step, const std::string& metrics_path);
  ~TestKillWhileTraining();
  TestKillWhileTraining(const TestKillWhileTraining&) = delete;
  TestKillWhileTraining& operator=(const TestKillWhileTraining&) = delete;

 private:
  bool armed_ = false;
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace prefopt::pipeline
