// prefopt diffusion: the model on disk in diffusers' pipeline layout
//   DIR/model_index.json                          _class_name PrefoptT2IPipeline, components
//   DIR/unet/config.json                          _class_name PrefoptTinyUNet + UNetConfig fields
//                                                 + the caption vocabulary (the text encoder is in the UNet)
//   DIR/unet/diffusion_pytorch_model.safetensors  the UNet's tensors (F32), names as TinyUNet::params()
//   DIR/scheduler/scheduler_config.json           DDPMScheduler fields
// The network is no stock diffusers class; its own _class_name says so.
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "diffusion/ddpm.h"
#include "diffusion/unet.h"

namespace prefopt::diffusion {

constexpr const char* kPipelineClass = "PrefoptT2IPipeline";
constexpr const char* kUNetClass = "PrefoptTinyUNet";

// Writes the directory atomically (replacing it); `extra` is merged into model_index.json
// under "prefopt" (how the model was made).
void save_pipeline(const std::string& dir, const TinyUNet& unet, const SchedulerConfig& sched,
                   const nlohmann::json& extra);

struct Pipeline {
  TinyUNet unet;
  SchedulerConfig scheduler;
};
// Reads it back; every missing file or bad field is a prefopt::Error naming the file.
Pipeline load_pipeline(const std::string& dir);

}  // namespace prefopt::diffusion
