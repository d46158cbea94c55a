#include "train/checkpoint.h"

#include "tokenizer/tokenizer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "model/precision.h"
#include "model/model.h"

namespace prefopt {

namespace fs = std::filesystem;

namespace {

// The step of a "checkpoint-<step>" name (digits up to the first non-digit),
// or -1 when the name is not one.
int64_t step_of(const std::string& name, bool whole) {
  if (name.rfind("checkpoint-", 0) != 0) return -1;
  try {
    size_t used = 0;
    const int64_t s = std::stoll(name.substr(11), &used);
    if (whole && used != name.size() - 11) return -1;
    return s;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

void write_model_files(const CausalLM& m, const std::string& dir, at::ScalarType dtype) {
  if (m.lora()) {  // PEFT's save_pretrained: the adapter only
    save_lora(m, dir);
    return;
  }
  std::map<std::string, at::Tensor> out;
  for (auto& [n, t] : m.named_parameters()) out[n] = t;
  nlohmann::json cj = config_to_json(m.config());
  cj["torch_dtype"] = torch_dtype_name(dtype);
  io::save_safetensors(dir + "/model.safetensors", out, dtype);
  atomic_write(dir + "/config.json", cj.dump(2) + "\n");
}

std::string save_checkpoint(const std::string& output_dir, int64_t step, const CausalLM& policy,
                            const std::string& tokenizer_source, const std::map<std::string, at::Tensor>& optimizer,
                            const nlohmann::json& state) {
  const std::string dir = fmt::format("{}/checkpoint-{}", output_dir, step);
  atomic_write_dir(dir, [&](const std::string& tmp) {
    write_model_files(policy, tmp);
    copy_tokenizer_files(tokenizer_source, tmp);
    io::save_safetensors(tmp + "/optimizer.safetensors", optimizer, at::kFloat);
    atomic_write(tmp + "/trainer_state.json", state.dump(2) + "\n");
  });
  return dir;
}

Checkpoint load_checkpoint(const std::string& dir) {
  Checkpoint ck;
  ck.dir = dir;
  const std::string st_path = dir + "/trainer_state.json";
  try {
    ck.state = nlohmann::json::parse(read_file(st_path));
  } catch (const nlohmann::json::exception& e) {
    fail(st_path, std::string("not a valid trainer state: ") + e.what(), "resume from another checkpoint");
  }
  const std::string adapter = dir + "/adapter_model.safetensors";
  ck.model = io::load_safetensors(file_exists(adapter) ? adapter : dir + "/model.safetensors", at::kFloat);
  ck.optimizer = io::load_safetensors(dir + "/optimizer.safetensors", at::kFloat);
  return ck;
}

void rotate_checkpoints(const std::string& output_dir, int64_t keep) {
  if (keep <= 0) return;
  std::vector<std::pair<int64_t, std::string>> all;
  for (auto& e : fs::directory_iterator(output_dir)) {
    const std::string n = e.path().filename().string();
    if (!e.is_directory() || n.find(".tmp") != std::string::npos || n.find(".old") != std::string::npos) continue;
    const int64_t s = step_of(n, false);
    if (s >= 0) all.push_back({s, e.path().string()});
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + keep < all.size(); ++i) remove_all(all[i].second);
}

std::string latest_checkpoint(const std::string& output_dir) {
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return "";
  int64_t best = -1;
  std::string path;
  for (auto& e : fs::directory_iterator(output_dir, ec)) {
    if (!e.is_directory() || !file_exists(e.path().string() + "/trainer_state.json")) continue;
    const int64_t s = step_of(e.path().filename().string(), true);
    if (s > best) best = s, path = e.path().string();
  }
  return path;
}

std::vector<std::string> config_changes(const nlohmann::json& saved, const nlohmann::json& now) {
  static const std::set<std::string> kIgnored = {"output_dir", "logging_steps", "save_steps", "save_total_limit",
                                                 "eval_steps", "eval_data",     "threads",
                                                 "ddp_timeout", "ddp_bucket_cap_mb", "ddp_overlap"};
  std::set<std::string> keys;
  for (auto& [k, v] : saved.items()) keys.insert(k);
  for (auto& [k, v] : now.items()) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (kIgnored.count(k)) continue;
    const bool a = saved.contains(k), b = now.contains(k);
    if (a && b && saved[k] == now[k]) continue;
    out.push_back(fmt::format("{}: {} -> {}", k, a ? saved[k].dump() : "(absent)", b ? now[k].dump() : "(absent)"));
  }
  return out;
}

}  // namespace prefopt
