#include "pipeline/run_state.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "dist/dist.h"

namespace prefopt::pipeline {

namespace fs = std::filesystem;

namespace {

// Nested objects as "a.b" -> value, so a difference names its key.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object() && !(j.empty() && !prefix.empty())) {
    for (auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  out[prefix] = j;
}

}  // namespace

// Under torchrun, rank 0 reads, checks and writes the state; the other ranks receive
// it (or its error) and keep the same steps in memory.
RunState::RunState(const std::string& dir, const std::string& command, const nlohmann::json& config, bool resume,
                   const std::vector<std::string>& may_change)
    : dir_(dir), path_(dir + "/run_state.json") {
  if (!dist::active()) {
    load(command, config, resume, may_change);
    return;
  }
  std::string err;
  if (dist::is_main()) {
    try {
      load(command, config, resume, may_change);
    } catch (const Error& e) {
      err = e.what();
    }
  }
  const nlohmann::json mine = err.empty() ? nlohmann::json{{"state", state_}, {"resumed", resumed_}}
                                          : nlohmann::json{{"error", err}};
  const auto got = nlohmann::json::parse(dist::broadcast_bytes(dist::is_main() ? mine.dump() : ""));
  if (got.contains("error")) throw Error(got["error"].get<std::string>());
  state_ = got["state"];
  resumed_ = got["resumed"].get<std::vector<std::string>>();
}

void RunState::load(const std::string& command, const nlohmann::json& config, bool resume,
                    const std::vector<std::string>& may_change) {
  const std::string& dir = dir_;
  make_dirs(dir);
  remove_temp_files(dir);
  const bool have = file_exists(path_);
  if (resume && !have)
    PREFOPT_REQUIRE(!file_exists(dir + "/summary.json"), dir,
                    "--resume: this directory has a summary.json but no run_state.json (a run of an older prefopt)",
                    "start the run again without --resume, or in a new output directory");
  if (resume && have) {
    try {
      state_ = nlohmann::json::parse(read_file(path_));
    } catch (const nlohmann::json::exception& e) {
      fail(path_, std::string("not a valid run state: ") + e.what(), "start the run again without --resume");
    }
    PREFOPT_REQUIRE(state_.value("command", std::string()) == command, path_,
                    "--resume: this directory holds a `prefopt " + state_.value("command", std::string("?")) +
                        "` run, not a `prefopt " + command + "` run",
                    "resume with the command that started it, or use another output directory");
    std::map<std::string, nlohmann::json> was, now;
    flatten(state_.value("config", nlohmann::json::object()), "", was);
    flatten(config, "", now);
    for (auto& [k, v] : now) was.emplace(k, nlohmann::json());
    for (auto& [k, v] : was) {
      if (std::find(may_change.begin(), may_change.end(), k) != may_change.end()) continue;
      const nlohmann::json n = now.count(k) ? now[k] : nlohmann::json();
      PREFOPT_REQUIRE(v == n, path_,
                      "--resume: the configuration changed since this run was started: " + k + " was " + v.dump() +
                          ", now " + n.dump(),
                      "resume with the same settings (" + k + " = " + v.dump() +
                          "), or start a new run without --resume or in another output directory");
    }
    state_["config"] = config;  // keys in may_change take their new values
    for (auto& s : state_["steps"]) resumed_.push_back(s["step"].get<std::string>());
    if (!resumed_.empty())
      info("{}: resuming: {} step(s) committed ({} ... {})", command, resumed_.size(), resumed_.front(), resumed_.back());
    write();
    return;
  }
  if (resume) info("{}: --resume: no run state in {}; starting a new run", command, dir);
  state_ = {{"version", 1}, {"command", command}, {"config", config}, {"steps", nlohmann::json::array()}};
  write();
}

bool RunState::done(const std::string& step) const {
  for (auto& s : state_["steps"])
    if (s["step"] == step) return true;
  return false;
}

const nlohmann::json& RunState::entry(const std::string& step) const {
  for (auto& s : state_["steps"])
    if (s["step"] == step) return s["entry"];
  PREFOPT_ASSERT(false, "run state: step {} is not committed", step);
}

void RunState::commit(const std::string& step, const nlohmann::json& entry, const std::string& step_dir) {
  PREFOPT_ASSERT(!done(step), "run state: step {} committed twice", step);
  if (dist::is_main() && !step_dir.empty() && is_directory(step_dir)) {
    for (auto& e : fs::recursive_directory_iterator(step_dir)) fsync_path(e.path().string());
    fsync_path(step_dir);
  }
  state_["steps"].push_back({{"step", step}, {"entry", entry}});
  write();
  dist::barrier();  // the step's files are on disk before any rank goes on
}

double RunState::resumed_seconds() const {
  double s = 0;
  for (auto& st : state_["steps"])
    if (std::find(resumed_.begin(), resumed_.end(), st["step"].get<std::string>()) != resumed_.end())
      s += st["entry"].value("seconds", 0.0);
  return s;
}

void RunState::write() const {
  if (dist::is_main()) atomic_write(path_, state_.dump(1) + "\n");
}

void reset_step_dir(const std::string& dir) {
  remove_all(dir);
  make_dirs(dir);
}

void reset_step_dir_keeping(const std::string& dir, const std::string& keep) {
  make_dirs(dir);
  std::vector<fs::path> drop;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != keep) drop.push_back(e.path());
  for (auto& p : drop) remove_all(p.string());
}

Dataset read_round_rows(const std::string& path, DataKind kind) {
  Dataset ds;
  ds.path = path;
  ds.kind = kind;
  for_each_jsonl(path, [&](const nlohmann::json& row, size_t line) {
    auto completion = [&](const char* ids, const char* mask) {
      Completion c;
      c.ids = require_field(row, ids, path, line).get<std::vector<int32_t>>();
      c.mask = require_field(row, mask, path, line).get<std::vector<uint8_t>>();
      PREFOPT_REQUIRE(c.ids.size() == c.mask.size(), where(path, line),
                      std::string(ids) + " and " + mask + " differ in length", "the file was not written by prefopt");
      return c;
    };
    Example ex;
    ex.line = line;
    ex.prompt = require_field(row, "prompt_input_ids", path, line).get<std::vector<int32_t>>();
    if (kind == DataKind::Paired || kind == DataKind::Triple) {
      ex.completions.push_back(completion("chosen_input_ids", "chosen_loss_mask"));
      ex.completions.push_back(completion("rejected_input_ids", "rejected_loss_mask"));
      if (kind == DataKind::Triple) ex.completions.push_back(completion("reference_input_ids", "reference_loss_mask"));
    } else {
      ex.completions.push_back(completion("completion_input_ids", "completion_loss_mask"));
      if (kind == DataKind::Unpaired) ex.label = require_field(row, "label", path, line).get<bool>() ? 1 : 0;
    }
    ds.rows.push_back(std::move(ex));
  });
  return ds;
}

void remove_temp_files(const std::string& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename().string().find(".tmp.") == std::string::npos) continue;
    found.push_back(it->path());
    if (it->is_directory()) it.disable_recursion_pending();
  }
  for (auto& p : found) {
    info("removing {} (left by an interrupted run)", p.string());
    remove_all(p.string());
  }
}

bool test_kill_armed(const std::string& phase, const std::string& step) {
  const char* at = std::getenv("PREFOPT_TEST_KILL_AT");
  return at && std::string(at) == phase + ":" + step;
}

void test_kill_point(const std::string& phase, const std::string& step) {
  if (!test_kill_armed(phase, step)) return;
  warn("PREFOPT_TEST_KILL_AT={}:{}: raising SIGKILL", phase, step);
  std::raise(SIGKILL);
}

TestKillWhileTraining::TestKillWhileTraining(const std::string& step, const std::string& metrics_path)
    : armed_(test_kill_armed("train", step)) {
  if (!armed_) return;
  watcher_ = std::thread([this, metrics_path] {
    while (!stop_.load()) {
      std::error_code ec;
      if (fs::exists(metrics_path, ec) && fs::file_size(metrics_path, ec) > 0 && !ec) std::raise(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
}

TestKillWhileTraining::~TestKillWhileTraining() {
  if (!armed_) return;
  stop_.store(true);
  watcher_.join();
  std::raise(SIGKILL);  // training ended before the watcher saw it: still before the step's commit
}

}  // namespace prefopt::pipeline
