// prefopt tool-call loop: multi-turn trajectories with a Python interpreter
// (the ToRA / math-agent format)
//
// Format (plain text the model continues from, no chat-template tool turn):
//   the model writes        ```python\n<code>\n```
//   the loop appends        \n```output\n<printed output>\n```\n
//   and sampling continues after it.
// State: every execution replays all earlier blocks of the trajectory first
// with stdout suppressed (errors ignored), then runs the new block; only the
// new block's output (stdout + stderr, an exception as "Type: message") is
// shown, truncated to head + tail characters with a
// "...[truncated N chars]..." marker.
// Roles: tokens the model sampled are Role::Assistant, the appended output
// tokens are Role::Tool, so training masks the observations.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace prefopt {

class CausalLM;
class Tokenizer;
struct SamplingParams;

// One continuation of one trajectory.
struct ToolChunk {
  std::vector<int64_t> ids;   // sampled tokens
  std::string text;           // their decoded text (decode(ids))
  std::string finish_reason;  // "eos" | "stop" | "length" (the sampler's)
};

// What the loop asks the policy for: continue trajectory `row` whose full
// context (prompt + everything so far) is `context`, with at most `budget`
// new tokens; `round` = tool calls already made in this trajectory.
struct ToolStep {
  size_t row;
  const std::vector<int64_t>* context;
  int budget;
  int round;
};
// Continue every step (one chunk per step, in order). A model-backed policy
// samples with stop_fn = python_block_close so a chunk ends at a closed block.
using ToolPolicy = std::function<std::vector<ToolChunk>(const std::vector<ToolStep>& steps)>;

// Runs one self-contained Python program, returns what it printed.
using CodeRunner = std::function<std::string(const std::string& program)>;

struct ToolLoopParams {
  int max_tool_calls = 4;
  int max_new_tokens = 256;  // sampled (assistant) tokens per trajectory, all rounds together
  size_t output_head = 512, output_tail = 512;
};

struct Trajectory {
  std::vector<int64_t> ids;    // new tokens only (sampled + observations), prompt excluded
  std::vector<uint8_t> roles;  // Role values (tokenizer/chat_template.h): Assistant or Tool, per id
  std::string text;            // sampled text and observations, in order
  int tool_calls = 0;
  std::string finish_reason;   // "eos" | "stop" | "length" | "tool_limit" (a block closed after max_tool_calls)
};

// The stop rule: the end position (just past the closing ```) of the first
// ```python block closed in `text`, or npos.
size_t python_block_close(const std::string& text);
// All closed ```python blocks of `text`, in order (the code between the fences).
std::vector<std::string> python_blocks(const std::string& text);
// The program that replays blocks[0..k-1] silently, then runs blocks[k-1] printing.
std::string replay_program(const std::vector<std::string>& blocks);
// head + "...[truncated N chars]..." + tail when longer than head + tail.
std::string truncate_head_tail(const std::string& s, size_t head, size_t tail);
// "\n```output\n" + output (trailing newline trimmed) + "\n```\n".
std::string observation_text(const std::string& output);

// Runs the loop for every prompt (one trajectory per prompt row).
std::vector<Trajectory> run_tool_loop(const std::vector<std::vector<int64_t>>& prompts, const ToolPolicy& policy,
                                      const CodeRunner& run, const Tokenizer& tok, const ToolLoopParams& p);

// A model-backed policy: samples with sp (temperature, top-k/p, seed, eos,
// stop strings) plus stop_fn = python_block_close. Trajectory rows are laid
// out as prompt_index * sp.n + sample_index. The first call (every row at its
// prompt) samples the P prompts with n samples each and ONE shared prefill per
// prompt, with exactly the streams of plain sample(); later calls continue
// each row alone (left-padded batches grouped by budget) on its own stream
// (row, round), so results do not depend on batching.
ToolPolicy make_sampling_policy(const CausalLM& model, const Tokenizer& tok, const SamplingParams& sp);

// A CodeRunner isolated with bubblewrap, kept as an alternative runner for
// machines without the sandbox floor; prefopt generate --tools python uses
// the sandbox's run_python_transcript (sandbox/sandbox.h: seccomp, cgroups,
// a pre-started interpreter) instead. This one: new user (uid 65534), pid, net, mount, ipc, uts
// namespaces, read-only root, private /tmp as the working dir, stdin is the
// program only, rlimits (CPU, address space, file size, open files, no core),
// a wall-clock limit that kills the whole tree, output capped at cap_bytes.
struct BwrapLimits {
  double wall_seconds = 10;
  int cpu_seconds = 10;
  uint64_t address_space_bytes = 2ull << 30;
  uint64_t file_size_bytes = 16ull << 20;
  size_t cap_bytes = 1 << 16;
};
std::string run_python_bwrap(const std::string& program, const BwrapLimits& limits = {});

}  // namespace prefopt
