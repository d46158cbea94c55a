// Tool-call loop: a scripted policy writes python blocks; the loop must run
// them in the sandbox runner (what prefopt generate --tools python uses; the
// bwrap runner too) with state replayed, append the output as Tool
// tokens and continue; plus the block scanner, truncation, the runner's
// isolation, and the model-backed policy's invariants on a tiny model.
#include <gtest/gtest.h>

#include "generate/sampler.h"
#include "generate/tool_loop.h"
#include "model/model.h"
#include "sandbox/sandbox.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;

static Tokenizer tiny_tokenizer() {
  return train_bpe({"the cat sat on the mat. the dog ran to the cat! print(2+3) ```python\nx = 1\n``` ```output\n5\n```"},
                   300, {"<eos>"});
}

TEST(ToolLoop, BlockScanner) {
  EXPECT_EQ(python_block_close("no code"), std::string::npos);
  EXPECT_EQ(python_block_close("```python\nx=1\n"), std::string::npos);  // still open
  EXPECT_EQ(python_block_close("```python"), std::string::npos);
  const std::string t = "a ```python\nx=1\n``` b ```python\nprint(x)\n```";
  EXPECT_EQ(python_block_close(t), t.find("``` b") + 3);
  auto b = python_blocks(t);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0], "x=1\n");
  EXPECT_EQ(b[1], "print(x)\n");
  EXPECT_TRUE(python_blocks("```output\n5\n```").empty());
}

TEST(ToolLoop, TruncateHeadTail) {
  EXPECT_EQ(truncate_head_tail("abcdef", 3, 3), "abcdef");
  EXPECT_EQ(truncate_head_tail("abcdefgh", 2, 3), "ab...[truncated 3 chars]...fgh");
  EXPECT_EQ(observation_text("5\n"), "\n```output\n5\n```\n");
}

TEST(ToolLoop, BwrapRunnerIsolatesAndLimits) {
  EXPECT_EQ(run_python_bwrap("print(2+3)"), "5\n");
  EXPECT_EQ(run_python_bwrap("import os; print(os.getuid())"), "65534\n");
  auto net = run_python_bwrap(
      "import socket\ntry:\n  socket.create_connection(('127.0.0.1', 22), timeout=1)\n  print('connected')\n"
      "except OSError as e:\n  print('blocked')");
  EXPECT_EQ(net, "blocked\n");
  auto ro = run_python_bwrap("try:\n  open('/etc/prefopt_probe','w')\n  print('wrote')\nexcept OSError:\n  print('ro')");
  EXPECT_EQ(ro, "ro\n");
  BwrapLimits quick;
  quick.wall_seconds = 1;
  auto t = run_python_bwrap("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: pass", quick);
  EXPECT_NE(t.find("TimeoutError"), std::string::npos) << t;
  BwrapLimits cap;
  cap.cap_bytes = 1000;
  auto big = run_python_bwrap("print('x' * 100000)", cap);
  EXPECT_EQ(big.size(), 1000 + std::string("\n...[output truncated]").size());
}

TEST(ToolLoop, ReplaysStateAndPrintsOnlyTheNewBlock) {
  auto out = run_python_bwrap(replay_program({"x = 2 + 3\nprint('first')\n", "print(x * 10)\n"}));
  EXPECT_EQ(out, "50\n");
  auto err = run_python_bwrap(replay_program({"print(y)\n"}));
  EXPECT_EQ(err, "NameError: name 'y' is not defined\n");
  // The sandbox runner the CLI uses: the same transcript.
  EXPECT_EQ(run_python_transcript(replay_program({"x = 2 + 3\nprint('first')\n", "print(x * 10)\n"})), "50\n");
  EXPECT_EQ(run_python_transcript(replay_program({"print(y)\n"})), "NameError: name 'y' is not defined\n");
  EXPECT_EQ(run_python_transcript(replay_program({"import sys\nsys.exit(3)\n", "print('after')\n"})), "after\n");
}

static const CodeRunner sandboxed = [](const std::string& prog) { return run_python_transcript(prog); };

// The scripted model: round r returns script[r] as its chunk.
static ToolPolicy scripted(const Tokenizer& tok, std::vector<std::pair<std::string, std::string>> script) {
  return [&tok, script](const std::vector<ToolStep>& steps) {
    std::vector<ToolChunk> out;
    for (auto& st : steps) {
      auto [text, reason] = script.at(st.round);
      auto ids32 = tok.encode(text, false);
      out.push_back(ToolChunk{{ids32.begin(), ids32.end()}, text, reason});
    }
    return out;
  };
}

TEST(ToolLoop, ScriptedModelGetsToolObservations) {
  Tokenizer tok = tiny_tokenizer();
  auto policy = scripted(tok, {{"Let me compute.\n```python\nx = 2+3\nprint(x)\n```", "stop"},
                               {"Now times ten.\n```python\nprint(x*10)\n```", "stop"},
                               {"The answer is 50.", "eos"}});
  ToolLoopParams p;
  auto tr = run_tool_loop({{1, 2, 3}}, policy, sandboxed, tok, p);
  ASSERT_EQ(tr.size(), 1u);
  const auto& t = tr[0];
  EXPECT_EQ(t.tool_calls, 2);
  EXPECT_EQ(t.finish_reason, "eos");
  const std::string want = "Let me compute.\n```python\nx = 2+3\nprint(x)\n```\n```output\n5\n```\n"
                           "Now times ten.\n```python\nprint(x*10)\n```\n```output\n50\n```\nThe answer is 50.";
  EXPECT_EQ(t.text, want);
  ASSERT_EQ(t.ids.size(), t.roles.size());
  // Tool-role tokens decode to exactly the two observations; Assistant tokens to the rest.
  std::vector<int32_t> tool_ids, asst_ids;
  std::string tool_text;
  for (size_t i = 0; i < t.ids.size(); ++i) {
    if (t.roles[i] == static_cast<uint8_t>(Role::Tool)) tool_ids.push_back(static_cast<int32_t>(t.ids[i]));
    else {
      ASSERT_EQ(t.roles[i], static_cast<uint8_t>(Role::Assistant));
      asst_ids.push_back(static_cast<int32_t>(t.ids[i]));
    }
  }
  EXPECT_EQ(tok.decode(tool_ids), "\n```output\n5\n```\n\n```output\n50\n```\n");
  EXPECT_EQ(tok.decode(asst_ids), "Let me compute.\n```python\nx = 2+3\nprint(x)\n```Now times ten.\n```python\n"
                                  "print(x*10)\n```The answer is 50.");
  std::vector<int32_t> all(t.ids.begin(), t.ids.end());
  EXPECT_EQ(tok.decode(all), want);

  // With one call allowed, the second closed block ends the trajectory.
  p.max_tool_calls = 1;
  auto lim = run_tool_loop({{1, 2, 3}}, policy, sandboxed, tok, p);
  EXPECT_EQ(lim[0].tool_calls, 1);
  EXPECT_EQ(lim[0].finish_reason, "tool_limit");
}

TEST(ToolLoop, LongOutputIsTruncatedHeadAndTail) {
  Tokenizer tok = tiny_tokenizer();
  auto policy = scripted(tok, {{"```python\nprint('a'*30 + 'b'*40)\n```", "stop"}, {"done", "eos"}});
  ToolLoopParams p;
  p.output_head = 5, p.output_tail = 6;
  auto tr = run_tool_loop({{1}}, policy, sandboxed, tok, p);
  // Output "a"*30 + "b"*40 + "\n" (71 chars): head 5, tail 6 ("bbbbb\n"), 60 cut.
  EXPECT_NE(tr[0].text.find("```output\naaaaa...[truncated 60 chars]...bbbbb\n```\n"), std::string::npos) << tr[0].text;
}

// The model-backed policy on the tiny Llama: invariants (roles align, the
// first chunk equals plain sampling until the first fence, budget respected).
TEST(ToolLoop, SamplingPolicyInvariants) {
  auto m = CausalLM::from_pretrained(std::string(PREFOPT_SHARED_DATA) + "/models/llama");
  Tokenizer tok = tiny_tokenizer();
  SamplingParams sp;
  sp.temperature = 1.0, sp.seed = 2, sp.n = 3, sp.max_new_tokens = 24;
  std::vector<std::vector<int64_t>> prompts{{1, 78, 213}, {1, 5}};
  std::vector<std::vector<int64_t>> rows;
  for (auto& pr : prompts)
    for (int j = 0; j < sp.n; ++j) rows.push_back(pr);
  ToolLoopParams p;
  p.max_new_tokens = 24;
  int calls = 0;
  auto tr = run_tool_loop(rows, make_sampling_policy(*m, tok, sp),
                          [&](const std::string&) {
                            ++calls;
                            return std::string("ok");
                          },
                          tok, p);
  auto plain = sample(*m, &tok, prompts, sp);
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(tr[r].ids.size(), tr[r].roles.size());
    int asst = 0;
    for (auto x : tr[r].roles) asst += x == static_cast<uint8_t>(Role::Assistant);
    EXPECT_LE(asst, 24);
    // Without a closed block the trajectory is the plain sample.
    if (tr[r].tool_calls == 0) EXPECT_EQ(tr[r].ids, plain[r / sp.n][r % sp.n].ids) << r;
  }
}
