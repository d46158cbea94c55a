// Tool-call loop: sample until a ```python block closes, run it (replaying the
// trajectory's earlier blocks for state), append the output as Tool tokens,
// continue. The format follows ToRA / the math-agent recipe (```output fences).
#include "generate/tool_loop.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace prefopt {

namespace {
const std::string kOpen = "```python";
const std::string kFence = "```";

// Scans `text` for closed python blocks; calls fn(code, end_of_closing_fence).
template <typename Fn>
void scan_blocks(const std::string& text, Fn fn) {
  size_t at = 0;
  while ((at = text.find(kOpen, at)) != std::string::npos) {
    size_t nl = text.find('\n', at + kOpen.size());
    if (nl == std::string::npos) return;  // the opening line is not finished yet
    size_t close = text.find(kFence, nl + 1);
    if (close == std::string::npos) return;  // still open
    std::string code = text.substr(nl + 1, close - (nl + 1));
    if (!fn(code, close + kFence.size())) return;
    at = close + kFence.size();
  }
}
}  // namespace

size_t python_block_close(const std::string& text) {
  size_t end = std::string::npos;
  scan_blocks(text, [&](const std::string&, size_t e) {
    end = e;
    return false;
  });
  return end;
}

std::vector<std::string> python_blocks(const std::string& text) {
  std::vector<std::string> out;
  scan_blocks(text, [&](const std::string& code, size_t) {
    out.push_back(code);
    return true;
  });
  return out;
}

std::string replay_program(const std::vector<std::string>& blocks) {
  PREFOPT_CHECK(!blocks.empty(), "replay_program: no block to run");
  // Python string literals as JSON strings (a JSON string is a valid Python literal).
  nlohmann::json lits = blocks;
  const std::string arr = lits.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return "import sys as _po_sys, io as _po_io\n"
         "_po_blocks = " + arr + "\n"
         "for _po_b in _po_blocks[:-1]:\n"
         "    _po_out, _po_err = _po_sys.stdout, _po_sys.stderr\n"
         "    _po_sys.stdout = _po_sys.stderr = _po_io.StringIO()\n"
         "    try:\n"
         "        exec(compile(_po_b, '<cell>', 'exec'), globals())\n"
         "    except BaseException:\n"
         "        pass\n"
         "    finally:\n"
         "        _po_sys.stdout, _po_sys.stderr = _po_out, _po_err\n"
         "try:\n"
         "    exec(compile(_po_blocks[-1], '<cell>', 'exec'), globals())\n"
         "except BaseException as _po_e:\n"
         "    _po_sys.stdout.flush()\n"
         "    print(type(_po_e).__name__ + ': ' + str(_po_e))\n";
}

std::string truncate_head_tail(const std::string& s, size_t head, size_t tail) {
  if (s.size() <= head + tail) return s;
  const size_t cut = s.size() - head - tail;
  return s.substr(0, head) + "...[truncated " + std::to_string(cut) + " chars]..." + s.substr(s.size() - tail);
}

std::string observation_text(const std::string& output) {
  std::string o = output;
  while (!o.empty() && o.back() == '\n') o.pop_back();
  return "\n```output\n" + o + "\n```\n";
}

std::vector<Trajectory> run_tool_loop(const std::vector<std::vector<int64_t>>& prompts, const ToolPolicy& policy,
                                      const CodeRunner& run, const Tokenizer& tok, const ToolLoopParams& p) {
  const size_t N = prompts.size();
  std::vector<Trajectory> out(N);
  std::vector<std::vector<int64_t>> context(prompts);
  std::vector<std::string> assistant_text(N);  // only what the model wrote: observations never open blocks
  std::vector<int> used(N, 0);                 // sampled tokens so far
  std::vector<size_t> active(N);
  for (size_t i = 0; i < N; ++i) active[i] = i;
  while (!active.empty()) {
    std::vector<ToolStep> steps;
    for (size_t i : active) steps.push_back(ToolStep{i, &context[i], p.max_new_tokens - used[i], out[i].tool_calls});
    auto chunks = policy(steps);
    PREFOPT_CHECK(chunks.size() == steps.size(), "tool loop: the policy returned {} chunks for {} steps",
                  chunks.size(), steps.size());
    std::vector<size_t> still;
    for (size_t s = 0; s < steps.size(); ++s) {
      const size_t i = steps[s].row;
      Trajectory& tr = out[i];
      const ToolChunk& c = chunks[s];
      tr.ids.insert(tr.ids.end(), c.ids.begin(), c.ids.end());
      tr.roles.insert(tr.roles.end(), c.ids.size(), static_cast<uint8_t>(Role::Assistant));
      context[i].insert(context[i].end(), c.ids.begin(), c.ids.end());
      tr.text += c.text;
      assistant_text[i] += c.text;
      used[i] += static_cast<int>(c.ids.size());
      auto blocks = python_blocks(assistant_text[i]);
      const bool new_block = static_cast<int>(blocks.size()) > tr.tool_calls && c.finish_reason != "eos";
      if (!new_block) {
        tr.finish_reason = c.finish_reason;
        continue;
      }
      if (tr.tool_calls >= p.max_tool_calls) {
        tr.finish_reason = "tool_limit";
        continue;
      }
      // Execute blocks up to the newest one; later closed blocks in the same
      // chunk (rare: the policy did not stop at the first) are not run.
      blocks.resize(tr.tool_calls + 1);
      std::string obs = observation_text(truncate_head_tail(run(replay_program(blocks)), p.output_head, p.output_tail));
      auto oids = tok.encode(obs, false);
      tr.ids.insert(tr.ids.end(), oids.begin(), oids.end());
      tr.roles.insert(tr.roles.end(), oids.size(), static_cast<uint8_t>(Role::Tool));
      context[i].insert(context[i].end(), oids.begin(), oids.end());
      tr.text += obs;
      assistant_text[i] += "\n";  // a fence never spans an observation
      ++tr.tool_calls;
      if (used[i] >= p.max_new_tokens) {
        tr.finish_reason = "length";
        continue;
      }
      still.push_back(i);
    }
    active.swap(still);
  }
  return out;
}

}  // namespace prefopt
