#include "diffusion/diffusers_io.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "diffusion/world.h"
#include "io/safetensors.h"

namespace prefopt::diffusion {

using json = nlohmann::json;

namespace {
constexpr const char* kDiffusersVersion = "0.27.2";
json read_json_file(const std::string& path) {
  PREFOPT_REQUIRE(file_exists(path), path, "missing", "point at a directory written by prefopt t2i-pretrain");
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what(), "rewrite it with prefopt t2i-pretrain");
  }
}
}  // namespace

void save_pipeline(const std::string& dir, const TinyUNet& unet, const SchedulerConfig& sched, const json& extra) {
  atomic_write_dir(dir, [&](const std::string& tmp) {
    json index = {{"_class_name", kPipelineClass},
                  {"_diffusers_version", kDiffusersVersion},
                  {"unet", {"prefopt", kUNetClass}},
                  {"scheduler", {"diffusers", "DDPMScheduler"}},
                  {"prefopt", extra}};
    atomic_write(tmp + "/model_index.json", index.dump(2) + "\n");
    make_dirs(tmp + "/unet");
    json cfg = to_json(unet.config());
    cfg["_class_name"] = kUNetClass;
    cfg["_diffusers_version"] = kDiffusersVersion;
    cfg["vocabulary"] = vocabulary();
    cfg["caption_grammar"] = "a COLOUR SHAPE RELATION a COLOUR SHAPE";
    atomic_write(tmp + "/unet/config.json", cfg.dump(2) + "\n");
    std::map<std::string, at::Tensor> tensors;
    for (const auto& [n, t] : unet.params()) tensors[n] = t.detach();
    io::save_safetensors(tmp + "/unet/diffusion_pytorch_model.safetensors", tensors, at::kFloat);
    make_dirs(tmp + "/scheduler");
    json sc = to_json(sched);
    sc["_diffusers_version"] = kDiffusersVersion;
    atomic_write(tmp + "/scheduler/scheduler_config.json", sc.dump(2) + "\n");
  });
}

Pipeline load_pipeline(const std::string& dir) {
  PREFOPT_REQUIRE(is_directory(dir), dir, "not a directory", "pass the directory written by prefopt t2i-pretrain");
  const json index = read_json_file(dir + "/model_index.json");
  PREFOPT_REQUIRE(index.value("_class_name", "") == kPipelineClass, dir + "/model_index.json",
                  "_class_name is not " + std::string(kPipelineClass), "this is not a prefopt t2i model");
  const std::string cfg_path = dir + "/unet/config.json";
  const json cfg = read_json_file(cfg_path);
  PREFOPT_REQUIRE(cfg.value("_class_name", "") == kUNetClass, cfg_path,
                  "_class_name is not " + std::string(kUNetClass), "this is not a prefopt t2i UNet");
  PREFOPT_REQUIRE(cfg.contains("vocabulary") && cfg["vocabulary"] == json(vocabulary()), cfg_path,
                  "the caption vocabulary differs from this program's", "re-make the model with this prefopt");
  Pipeline p;
  p.unet = TinyUNet(unet_config_from_json(cfg, cfg_path), 0);
  const std::string w = dir + "/unet/diffusion_pytorch_model.safetensors";
  PREFOPT_REQUIRE(file_exists(w), w, "missing", "point at a directory written by prefopt t2i-pretrain");
  p.unet.load(io::load_safetensors(w, at::kFloat), w);
  const std::string sp = dir + "/scheduler/scheduler_config.json";
  p.scheduler = scheduler_config_from_json(read_json_file(sp), sp);
  return p;
}

}  // namespace prefopt::diffusion
