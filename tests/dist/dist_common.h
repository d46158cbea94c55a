// Helpers of the data-parallel tests: a tiny pre-tokenized model and data,
// free loopback ports, and launching `prefopt` as 1 rank, as N ranks under
// torchrun (or, without torchrun, as N processes given torchrun's variables).
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/run_cli.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"

namespace prefopt::disttest {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("prefopt_dist_" + name + "." + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// A port the kernel has just handed out on 127.0.0.1 (free unless someone races for it).
inline int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  close(s);
  return ntohs(a.sin_port);
}

inline std::string torchrun_path() {
  for (const char* p : {"/usr/bin/torchrun", "/usr/local/bin/torchrun"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

// A 2-layer Llama over a 64-token vocabulary, no tokenizer (the data is pre-tokenized).
inline std::string tiny_model(const std::string& dir) {
  const std::string m = dir + "/tiny";
  auto cfg = llama_config(64, 32, 2, 2, 1, 64, 128, /*tie=*/false);
  CausalLM::from_config(cfg, 7)->save_pretrained(m);
  return m;
}

inline std::vector<int> ids(Rng& rng, int lo, int hi) {
  std::vector<int> v(static_cast<size_t>(lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1)))));
  for (auto& x : v) x = 1 + static_cast<int>(rng.below(63));
  return v;
}

// `n` pre-tokenized preference rows (paired) or KTO/BCO rows (unpaired, labels mixed).
inline std::string write_data(const std::string& path, bool paired, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<json> rows;
  for (int i = 0; i < n; ++i) {
    json r = {{"prompt_input_ids", ids(rng, 3, 7)}};
    if (paired) {
      r["chosen_input_ids"] = ids(rng, 2, 6), r["rejected_input_ids"] = ids(rng, 2, 6);
    } else {
      r["completion_input_ids"] = ids(rng, 2, 6);
      r["label"] = (i % 3) != 1;
    }
    rows.push_back(r);
  }
  write_jsonl(path, rows);
  return path;
}

inline std::string read_text(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

inline std::string exe() { return prefopt::testing::prefopt_exe(); }

// Runs a shell command line; returns the exit status.
inline int sh(const std::string& cmd) {
  int rc = 0;
  prefopt::testing::popen_read(cmd, &rc);
  return rc;
}

// One rank: no torchrun variables; one OpenBLAS thread as torchrun gives each rank.
inline int run_one(const std::string& args, const std::string& log) {
  return sh("env -u WORLD_SIZE -u RANK OMP_NUM_THREADS=1 " + exe() + " " + args + " > " + log + " 2>&1");
}

// `nproc` ranks on this host under torchrun's c10d rendezvous on a free port
// (as --standalone, which always takes port 29400), with Debian 12's
// workaround for torchrun's crash in to_map (--redirects 2 --tee 1: the
// ranks' stderr goes to files under --log_dir, here <log>.d).
inline int run_torchrun(int nproc, const std::string& args, const std::string& log) {
  const std::string tr = torchrun_path();
  const std::string launch =
      tr.empty() ? "" : tr + " --no_python --nnodes 1 --nproc_per_node " + std::to_string(nproc) +
                            " --rdzv_backend c10d --rdzv_endpoint 127.0.0.1:" + std::to_string(free_port()) +
                            " --redirects 2 --tee 1 --log_dir " + log + ".d ";
  if (tr.empty()) {  // torchrun's contract by hand
    const int port = free_port();
    std::string cmd;
    for (int r = 0; r < nproc; ++r)
      cmd += "env OMP_NUM_THREADS=1 RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
             " WORLD_SIZE=" + std::to_string(nproc) + " LOCAL_WORLD_SIZE=" + std::to_string(nproc) +
             " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + exe() + " " + args + " > " + log +
             "." + std::to_string(r) + " 2>&1 & ";
    return sh("(" + cmd + "fail=0; for j in $(jobs -p); do wait $j || fail=1; done; exit $fail)");
  }
  return sh("OMP_NUM_THREADS=1 " + launch + exe() + " " + args + " > " + log + " 2>&1");
}

// The launcher's output and every rank's stderr (torchrun's --log_dir files, or <log>.<rank>).
inline std::string ranks_log(const std::string& log) {
  std::string s = read_text(log);
  const fs::path parent = fs::path(log).parent_path();
  const std::string base = fs::path(log).filename().string();
  std::vector<std::string> files;
  for (auto& e : fs::recursive_directory_iterator(parent)) {
    const std::string p = e.path().string();
    if (e.is_regular_file() && (p.find(log + ".d/") == 0 || p.rfind(log + ".", 0) == 0) && p != log) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  for (auto& f : files) s += "\n== " + f + "\n" + read_text(f);
  (void)base;
  return s;
}

// What a training run left in its output_dir.
struct RunOut {
  std::vector<json> metrics;
  std::map<std::string, at::Tensor> weights;
};

inline RunOut read_run(const std::string& dir) {
  RunOut o;
  o.metrics = read_jsonl(dir + "/metrics.jsonl");
  o.weights = io::load_safetensors(dir + "/model.safetensors", at::kFloat);
  return o;
}

inline double max_weight_diff(const RunOut& a, const RunOut& b) {
  double m = 0;
  for (auto& [n, t] : a.weights) m = std::max(m, (t - b.weights.at(n)).abs().max().item<double>());
  return m;
}

// Same metric rows (every key of each, within tol relative to max(1, |value|)) and weights within tol.
inline void expect_same_run(const RunOut& a, const RunOut& b, double tol) {
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  ASSERT_FALSE(a.metrics.empty());
  for (size_t i = 0; i < a.metrics.size(); ++i) {
    for (auto& [k, v] : a.metrics[i].items()) {
      ASSERT_TRUE(b.metrics[i].contains(k)) << "row " << i << " lacks " << k;
      const double x = v.get<double>(), y = b.metrics[i][k].get<double>();
      EXPECT_LE(std::fabs(x - y), tol * std::max(1.0, std::fabs(x))) << "row " << i << " " << k;
    }
    EXPECT_EQ(a.metrics[i].size(), b.metrics[i].size()) << "row " << i;
  }
  EXPECT_LE(max_weight_diff(a, b), tol);
}

}  // namespace prefopt::disttest
