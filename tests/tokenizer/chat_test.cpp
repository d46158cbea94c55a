// Chat templates: rendered text equals the real Jinja templates' output (rendered with
// jinja2 from ../shared/data/tokenizers/*/tokenizer_config.json, pasted below), ids equal
// encode(rendered text), and the role of every token is checked on multi-turn
// conversations with tool turns.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

using namespace prefopt;
static const std::string D = PREFOPT_SHARED_DATA "/tokenizers/";

static std::vector<ChatMessage> conv() {
  return {{"system", "Be brief."}, {"user", "What is 2+3?"}, {"assistant", "It is 5."},
          {"user", "And 10*7?"},   {"assistant", "70."}};
}
static std::vector<ChatMessage> tool_conv() {
  return {{"system", "You can run python."},
          {"user", "Compute 12*12."},
          {"assistant", "<tool_call>print(12*12)</tool_call>"},
          {"tool", "144"},
          {"assistant", "12*12 = 144."},
          {"user", "Thanks!"},
          {"assistant", "You're welcome."}};
}

static std::string squash(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 3, "\xE2\x96\x81") == 0) { i += 3; continue; }
    if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t') { ++i; continue; }
    o += s[i++];
  }
  return o;
}

// Token-by-token role check: for every role, the tokens carrying it decode (alone) to
// exactly the text of the segments with that role, in order (whitespace-insensitive, as
// SentencePiece moves spaces into the next token); and ids == encode(rendered text).
static void check_roles(const Tokenizer& tok, const ChatTemplate& ct, const std::vector<ChatMessage>& m) {
  auto segs = ct.render_segments(m, false);
  std::string text = ct.render_text(m, false);
  EncodedChat ec = ct.render(tok, m, false);
  ASSERT_EQ(ec.ids, tok.encode(text)) << ct.name();
  ASSERT_EQ(ec.ids.size(), ec.roles.size());
  for (Role r : {Role::Template, Role::System, Role::User, Role::Assistant, Role::Tool}) {
    std::string want, got;
    for (auto& s : segs)
      if (s.role == r) want += s.text;
    for (size_t k = 0; k < ec.ids.size(); ++k)
      if (ec.roles[k] == r) got += tok.decode({ec.ids[k]});
    EXPECT_EQ(squash(got), squash(want)) << ct.name() << " role " << role_name(r);
  }
}

TEST(ChatTemplate, Qwen2RealTemplateText) {
  auto ct = ChatTemplate::detect(D + "qwen2/tokenizer_config.json");
  EXPECT_EQ(ct.name(), "chatml");
  EXPECT_EQ(ct.render_text(conv(), false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\nIt "
            "is 5.<|im_end|>\n<|im_start|>user\nAnd 10*7?<|im_end|>\n<|im_start|>assistant\n70.<|im_end|>\n");
  auto all = conv();
  std::vector<ChatMessage> nosys(all.begin() + 1, all.end());
  EXPECT_EQ(ct.render_text(nosys, false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_"
            "start|>assistant\nIt is 5.<|im_end|>\n<|im_start|>user\nAnd 10*7?<|im_end|>\n<|im_start|>assistant\n70.<|im_"
            "end|>\n");
  EXPECT_EQ(ct.render_text({nosys[0]}, true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_"
            "start|>assistant\n");
}

TEST(ChatTemplate, Phi3RealTemplateText) {
  auto ct = ChatTemplate::detect(D + "phi3/tokenizer_config.json");
  EXPECT_EQ(ct.name(), "phi3");
  EXPECT_EQ(ct.render_text(conv(), false),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nWhat is 2+3?<|end|>\n<|assistant|>\nIt is 5.<|end|>\n<|user|>\nAnd "
            "10*7?<|end|>\n<|assistant|>\n70.<|end|>\n");
  std::vector<ChatMessage> one{{"user", "What is 2+3?"}};
  EXPECT_EQ(ct.render_text(one, true), "<|user|>\nWhat is 2+3?<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, OfficialTemplatesRecognised) {
  // Meta-Llama-3-8B-Instruct, gemma-2b-it, Llama-2-7b-chat, Mistral-7B-Instruct-v0.1 (abridged
  // to their distinctive parts).
  EXPECT_EQ(ChatTemplate::detect("{% set content = '<|start_header_id|>' + message['role'] + "
                                 "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}")
                .name(),
            "llama3");
  EXPECT_EQ(ChatTemplate::detect("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}").name(),
            "gemma");
  EXPECT_EQ(ChatTemplate::detect("{{ bos_token + '[INST] ' + '<<SYS>>\\n' + content.strip() + ' [/INST]' }}").name(), "llama2");
  EXPECT_EQ(ChatTemplate::detect("{{ '[INST] ' + message['content'] + ' [/INST]' }}").name(), "mistral");
  try {
    ChatTemplate::detect("{{ message['content'] }}");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("--chat-template"), std::string::npos);
    EXPECT_NE(w.find("chatml, llama3, llama2, mistral, gemma, phi3, plain"), std::string::npos) << w;
  }
  EXPECT_THROW(ChatTemplate::by_name("vicuna"), Error);
}

TEST(ChatTemplate, Llama3TextAndRoles) {
  auto tok = Tokenizer::load(D + "llama3/tokenizer.model");
  auto ct = ChatTemplate::by_name("llama3");
  std::vector<ChatMessage> m{{"user", " Hi "}, {"assistant", "Hello."}};
  EXPECT_EQ(ct.render_text(m, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_"
            "header_id|>\n\nHello.<|eot_id|>");
  auto ec = ct.render(tok, m, false);
  // Hand-derived: BOS, header(3 tokens: <|start_header_id|> user <|end_header_id|>), "\n\n", "Hi", <|eot_id|>, ...
  std::vector<int32_t> tail(ec.ids.end() - 2, ec.ids.end());
  EXPECT_EQ(ec.ids.back(), 128009);
  EXPECT_EQ(ec.roles.back(), Role::Assistant);      // the assistant's <|eot_id|>
  EXPECT_EQ(ec.roles[0], Role::Template);           // <|begin_of_text|>
  size_t hi = 5;                                    // after BOS, 3 header tokens, "\n\n"
  EXPECT_EQ(tok.decode({ec.ids[hi]}), "Hi");
  EXPECT_EQ(ec.roles[hi], Role::User);
  EXPECT_EQ(ec.roles[hi + 1], Role::Template);      // the user's <|eot_id|>
  EXPECT_EQ(ec.ids[hi + 1], 128009);
  check_roles(tok, ct, tool_conv());
}

TEST(ChatTemplate, ChatmlToolTurnsTokenByToken) {
  auto tok = Tokenizer::load(D + "qwen2");
  auto ct = ChatTemplate::by_name("chatml");
  auto m = tool_conv();
  check_roles(tok, ct, m);
  // Byte-level BPE and these texts: segment boundaries are pre-token boundaries, so the
  // joint ids equal the per-segment encodings concatenated and the roles follow exactly.
  std::vector<int32_t> ids;
  std::vector<Role> roles;
  for (auto& s : ct.render_segments(m, false)) {
    auto part = tok.encode(s.text);
    ids.insert(ids.end(), part.begin(), part.end());
    roles.insert(roles.end(), part.size(), s.role);
  }
  auto ec = ct.render(tok, m, false);
  EXPECT_EQ(ec.ids, ids);
  EXPECT_EQ(ec.roles, roles);
  int32_t im_end = *tok.token_to_id("<|im_end|>");
  int n_end_asst = 0, n_end_tmpl = 0, n_tool = 0;
  for (size_t k = 0; k < ec.ids.size(); ++k) {
    if (ec.ids[k] == im_end) (ec.roles[k] == Role::Assistant ? n_end_asst : n_end_tmpl)++;
    n_tool += ec.roles[k] == Role::Tool;
  }
  EXPECT_EQ(n_end_asst, 3);  // three assistant turns end with an Assistant <|im_end|>
  EXPECT_EQ(n_end_tmpl, 4);  // system, user, tool, user
  EXPECT_EQ(n_tool, int(tok.encode("144").size()));
  // The assistant mask covers exactly the assistant contents and their three <|im_end|>.
  auto mask = assistant_mask(ec.roles);
  int ones = 0;
  for (auto x : mask) ones += x;
  int want = 3;
  for (auto& msg : m)
    if (msg.role == "assistant") want += int(tok.encode(msg.content).size());
  EXPECT_EQ(ones, want);
}

TEST(ChatTemplate, SentencePieceFormats) {
  auto tok = Tokenizer::load(D + "phi3/tokenizer.json");
  for (const char* name : {"phi3", "llama2", "mistral"}) {
    auto ct = ChatTemplate::by_name(name);
    auto m = tool_conv();
    if (std::string(name) != "phi3") {  // [INST] formats alternate user/assistant
      m = {{"system", "Be brief."}, {"user", "Hi there"}, {"assistant", "Hello!"}, {"tool", "42"}, {"assistant", "It is 42."}};
    }
    check_roles(tok, ct, m);
  }
  EXPECT_EQ(ChatTemplate::by_name("llama2").render_text({{"system", "S"}, {"user", "U"}, {"assistant", "A"}}, false),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s>");
  EXPECT_EQ(ChatTemplate::by_name("mistral").render_text({{"user", "U"}, {"assistant", "A"}}, false),
            "<s>[INST] U [/INST]A</s>");
}

TEST(ChatTemplate, GemmaAndPlain) {
  auto tok = Tokenizer::load(D + "qwen2");
  auto g = ChatTemplate::by_name("gemma");
  EXPECT_EQ(g.render_text({{"system", "S"}, {"user", "U "}, {"assistant", "A"}}, true),
            "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n<start_of_turn>model\n");
  // Qwen2's vocabulary has no <end_of_turn> special token, so content must not end in
  // punctuation that would merge with the marker's "<" (a real straddling token).
  std::vector<ChatMessage> m{{"system", "Use tools"}, {"user", "Compute twelve squared"}, {"assistant", "calling python"},
                             {"tool", "144"}, {"assistant", "It is 144"}};
  check_roles(tok, g, m);
  auto p = ChatTemplate::by_name("plain");
  EXPECT_EQ(p.render_text({{"user", "U"}, {"assistant", "A"}}, false), "user: U\nassistant: A<|endoftext|>\n");
  check_roles(tok, p, tool_conv());
}

TEST(PromptCompletion, BoundaryAndMismatch) {
  auto tok = Tokenizer::load(D + "gpt2/tokenizer.json");
  auto pc = encode_prompt_completion(tok, "The answer is", " 42.", false);
  EXPECT_TRUE(pc.prefix_ok);
  EXPECT_EQ(pc.boundary, tok.encode("The answer is").size());
  EXPECT_EQ(pc.ids, tok.encode("The answer is 42."));
  // "Hello wor" + "ld": the prompt's last token "wor" does not survive the joint encoding.
  auto bad = encode_prompt_completion(tok, "Hello wor", "ld", false);
  EXPECT_FALSE(bad.prefix_ok);
  EXPECT_EQ(bad.boundary, 1u);  // only "Hello" is shared
  EXPECT_EQ(bad.ids, tok.encode("Hello world"));
  auto l3 = Tokenizer::load(D + "llama3/tokenizer.model");
  auto pc3 = encode_prompt_completion(l3, "Q: 2+2?\nA:", " 4", true);
  EXPECT_TRUE(pc3.prefix_ok);
  EXPECT_EQ(pc3.ids.front(), 128000);
  EXPECT_EQ(pc3.boundary, l3.encode("Q: 2+2?\nA:", true).size());
}
