// prefopt model: the --device flag, one parser for every command (train,
// generate, logprobs, iterate, demo, bench). No torch header beyond c10's Device.
#pragma once
#include <string>

#include <c10/core/Device.h>

namespace prefopt {

// "auto" (cuda:0 when this build and machine have CUDA, else cpu), "cpu",
// "cuda" (= cuda:0) or "cuda:N". Unknown spellings, a malformed index, and
// cuda on a build or machine without CUDA (or an index past the devices
// present) are an Error naming `origin`, with a hint.
c10::Device parse_device(const std::string& spec, const std::string& origin = "--device");

// The help text of a --device flag.
constexpr const char* kDeviceHelp = "auto | cpu | cuda | cuda:N (auto: cuda when available)";

}  // namespace prefopt
