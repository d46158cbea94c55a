// Chat templates: rendered text equals the real Jinja templates' output (rendered with
// jinja2 from ../shared/data/tokenizers/*/tokenizer_config.json, pasted below), ids equal
// encode(rendered text), and the role of every token is checked on multi-turn
// conversations with tool turns.
#include <gtest/gtest.h>

#include <cstdio>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
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
  EXPECT_EQ(ct.name(), "jinja");  // rendered by the Jinja engine, not a look-alike built-in
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
  EXPECT_EQ(ct.name(), "jinja");
  EXPECT_EQ(ct.render_text(conv(), false),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nWhat is 2+3?<|end|>\n<|assistant|>\nIt is 5.<|end|>\n<|user|>\nAnd "
            "10*7?<|end|>\n<|assistant|>\n70.<|end|>\n");
  std::vector<ChatMessage> one{{"user", "What is 2+3?"}};
  EXPECT_EQ(ct.render_text(one, true), "<|user|>\nWhat is 2+3?<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, AnyTemplateTextIsJinja) {
  // Template text is compiled, not matched against known markers: a template no built-in
  // resembles renders, and one with a syntax error is an Error naming the line, with a HINT.
  auto ct = ChatTemplate::detect("{% for m in messages %}[{{ m.role | upper }}] {{ m.content }}\n{% endfor %}");
  EXPECT_EQ(ct.name(), "jinja");
  EXPECT_EQ(ct.render_text({{"user", "U"}, {"assistant", "A"}}, false), "[USER] U\n[ASSISTANT] A\n");
  try {
    ChatTemplate::detect("{% for m in messages %}\n{{ m.content }");
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("line 2"), std::string::npos) << w;
    EXPECT_NE(w.find("HINT"), std::string::npos) << w;
  }
  try {
    ChatTemplate::detect(D + "gpt2");  // a directory without tokenizer_config.json
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chatml, llama3, llama2, mistral, gemma, phi3, plain"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate::by_name("vicuna"), Error);
  EXPECT_THROW(ChatTemplate::from_arg("vicuna"), Error);
  EXPECT_EQ(ChatTemplate::from_arg("chatml").name(), "chatml");
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

// ---- Jinja templates: roles from prefix renderings, {% generation %} spans, named lists.

static const std::string CT = PREFOPT_SHARED_DATA "/chat_templates/templates/";

static nlohmann::ordered_json template_file(const std::string& id) {
  return nlohmann::ordered_json::parse(prefopt::read_file(CT + id + ".json"));
}

// For every assistant turn, the tokens marked Assistant decode to exactly its content
// (as the template prints it) followed by the end-of-turn marker; nothing else is Assistant.
static void check_assistant_tokens(const Tokenizer& tok, const ChatTemplate& ct, const std::vector<ChatMessage>& m,
                                   const std::string& eot, bool trim) {
  EncodedChat ec = ct.render(tok, m, false);
  ASSERT_EQ(ec.ids, tok.encode(ct.render_text(m, false)));
  std::string got, want;
  for (size_t k = 0; k < ec.ids.size(); ++k)
    if (ec.roles[k] == Role::Assistant) got += tok.decode({ec.ids[k]});
  for (auto& x : m)
    if (x.role == "assistant") {
      std::string c = x.content;
      if (trim) {
        while (!c.empty() && (c.back() == ' ' || c.back() == '\n')) c.pop_back();
        while (!c.empty() && (c[0] == ' ' || c[0] == '\n')) c.erase(0, 1);
      }
      want += c + eot;
    }
  EXPECT_EQ(got, want);
}

TEST(ChatTemplateJinja, Llama32RolesTokenByToken) {
  auto tf = template_file("llama-3.2-3b-instruct");
  auto ct = ChatTemplate::from_jinja(tf["template"].get<std::string>(), "llama-3.2", tf["special_tokens"]);
  auto tok = Tokenizer::load(D + "llama3/tokenizer.model");
  std::vector<ChatMessage> m{{"system", "Be brief."}, {"user", "What is 2+3?"}, {"assistant", " It is 5. "},
                             {"user", "And 10*7?"}, {"assistant", "70."}};
  check_assistant_tokens(tok, ct, m, "<|eot_id|>", true);
  // The system content and the user turns carry their roles; the date block is Template.
  auto segs = ct.render_segments(m, false);
  std::string sys, user;
  for (auto& s : segs) {
    if (s.role == Role::System) sys += s.text;
    if (s.role == Role::User) user += s.text;
  }
  EXPECT_EQ(sys, "Be brief.");
  EXPECT_EQ(user, "What is 2+3?And 10*7?");
  // The prompt (with the generation prompt) is a token prefix of the whole conversation,
  // as the dataset loader requires.
  std::vector<ChatMessage> prompt(m.begin(), m.begin() + 2);
  auto p = ct.render(tok, prompt, true), full = ct.render(tok, {m[0], m[1], m[2]}, false);
  ASSERT_LE(p.ids.size(), full.ids.size());
  EXPECT_TRUE(std::equal(p.ids.begin(), p.ids.end(), full.ids.begin()));
  for (size_t k = p.ids.size(); k < full.ids.size(); ++k) EXPECT_EQ(full.roles[k], Role::Assistant) << k;
}

TEST(ChatTemplateJinja, QwenConfigRolesAndToolCalls) {
  auto tok = Tokenizer::load(D + "qwen2");
  auto ct = ChatTemplate::from_tokenizer(tok);
  EXPECT_EQ(ct.name(), "jinja");
  check_roles(tok, ct, conv());
  check_assistant_tokens(tok, ct, conv(), "<|im_end|>", false);
  // A ChatML template with tool calls: the assistant's tool-call text is Assistant output.
  std::string tmpl =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content %}{{ m.content }}{% endif %}"
      "{% for tc in m.tool_calls | default([]) %}<tool_call>{{ tc.function | tojson }}</tool_call>{% endfor %}"
      "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  auto tc = ChatTemplate::detect(tmpl);
  auto msgs = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "Weather?"},
      {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": {"c": "Paris"}}}]},
      {"role": "tool", "content": "21C"}, {"role": "assistant", "content": "It is 21C."}])");
  auto segs = tc.render_segments_json(msgs, nlohmann::ordered_json(), false, nlohmann::ordered_json::object());
  std::string asst, tool, all;
  for (auto& s : segs) {
    all += s.text;
    if (s.role == Role::Assistant) asst += s.text;
    if (s.role == Role::Tool) tool += s.text;
  }
  EXPECT_EQ(all, tc.render_json(msgs, nlohmann::ordered_json(), false, nlohmann::ordered_json::object()));
  EXPECT_EQ(asst, "<tool_call>{\"name\": \"w\", \"arguments\": {\"c\": \"Paris\"}}</tool_call><|im_end|>It is 21C.<|im_end|>");
  EXPECT_EQ(tool, "21C");
}

TEST(ChatTemplateJinja, GenerationTagMarksAssistant) {
  // With {% generation %} the template says what the assistant wrote: exactly those bytes.
  std::string tmpl =
      "{% for m in messages %}<|{{ m.role }}|>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|end|>"
      "{% endgeneration %}{% else %}{{ m.content }}<|end|>{% endif %}{{ '\\n' }}{% endfor %}";
  auto ct = ChatTemplate::detect(tmpl);
  std::vector<ChatMessage> m{{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}, {"assistant", "Ciao"}};
  std::string asst, text;
  for (auto& s : ct.render_segments(m, false)) {
    text += s.text;
    if (s.role == Role::Assistant) asst += s.text;
  }
  EXPECT_EQ(text, "<|user|>Hi<|end|>\n<|assistant|>Hello<|end|>\n<|user|>Bye<|end|>\n<|assistant|>Ciao<|end|>\n");
  EXPECT_EQ(asst, "Hello<|end|>Ciao<|end|>");
}

TEST(ChatTemplateJinja, NamedTemplatesAndConfigList) {
  std::string dir = "/tmp/prefopt_chat_named_" + std::to_string(getpid());
  prefopt::make_dirs(dir);
  nlohmann::ordered_json cfg = {
      {"bos_token", {{"content", "<B>"}, {"lstrip", false}}},
      {"eos_token", "<E>"},
      {"chat_template", {{{"name", "default"}, {"template", "{{ bos_token }}D{{ messages | length }}{{ eos_token }}"}},
                         {{"name", "tool_use"}, {"template", "{{ bos_token }}T{{ tools | length }}"}}}}};
  prefopt::atomic_write(dir + "/tokenizer_config.json", cfg.dump());
  auto ct = ChatTemplate::detect(dir);
  nlohmann::ordered_json msgs = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "x"}])");
  nlohmann::ordered_json tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  EXPECT_EQ(ct.render_json(msgs, nlohmann::ordered_json(), false, nlohmann::ordered_json::object()), "<B>D1<E>");
  EXPECT_EQ(ct.render_json(msgs, tools, false, nlohmann::ordered_json::object()), "<B>T1");
  // chat_template.jinja beside the config wins (transformers saves templates there).
  prefopt::atomic_write(dir + "/chat_template.jinja", "J{{ eos_token }}{{ flag }}\n");
  EXPECT_EQ(ChatTemplate::detect(dir + "/tokenizer_config.json")
                .render_json(msgs, nlohmann::ordered_json(), false, nlohmann::ordered_json{{"flag", 1}}),
            "J<E>1");
  std::remove((dir + "/chat_template.jinja").c_str());
  std::remove((dir + "/tokenizer_config.json").c_str());
  rmdir(dir.c_str());
}
