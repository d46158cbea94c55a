// prefopt tokenize: encode / decode / --chat / prompt+completion rows and file:line errors.
#include <gtest/gtest.h>

#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "core/fs.h"

using json = nlohmann::json;
static const std::string D = PREFOPT_SHARED_DATA "/tokenizers/";
static std::string exe() { return prefopt::testing::prefopt_exe(); }
static std::string run(const std::string& args, int* rc = nullptr, bool stderr_too = false) {
  return prefopt::testing::run_prefopt(args, rc, stderr_too);
}
static std::vector<json> lines(const std::string& s) {
  std::vector<json> v;
  std::istringstream is(s);
  std::string l;
  while (std::getline(is, l))
    if (!l.empty() && l[0] == '{') v.push_back(json::parse(l));
  return v;
}

TEST(TokenizeCli, EncodeDecodeChatErrors) {
  ASSERT_TRUE(prefopt::file_exists(exe())) << "prefopt not built: " << exe();
  std::string tmp = "/tmp/prefopt_tok_cli_" + std::to_string(getpid());
  prefopt::make_dirs(tmp);
  // Encode: strings and HF ids from llama.cpp's gpt-2 vectors (ggml-vocab-gpt-2.gguf.inp/.out).
  prefopt::atomic_write(tmp + "/in.jsonl",
                        "{\"text\": \"Hello world\"}\n{\"text\": \" Hello World!\"}\n{\"text\": \"!!!!!!\"}\n");
  auto enc = lines(run("tokenize --tokenizer " + D + "gpt2/tokenizer.json --input " + tmp + "/in.jsonl"));
  ASSERT_EQ(enc.size(), 3u);
  EXPECT_EQ(enc[0]["input_ids"], json({15496, 995}));
  EXPECT_EQ(enc[1]["input_ids"], json({18435, 2159, 0}));
  EXPECT_EQ(enc[2]["input_ids"], json({13896, 3228}));
  // --add-special-tokens with Llama-3: BOS first.
  auto bos = lines(run("tokenize --tokenizer " + D + "llama3/tokenizer.model --add-special-tokens --input " + tmp + "/in.jsonl"));
  ASSERT_EQ(bos.size(), 3u);
  EXPECT_EQ(bos[0]["input_ids"][0], 128000);
  // Decode.
  prefopt::atomic_write(tmp + "/ids.jsonl", "{\"input_ids\": [15496, 995, 50256]}\n");
  auto dec = lines(run("tokenize --tokenizer " + D + "gpt2/tokenizer.json --decode --skip-special-tokens --input " + tmp + "/ids.jsonl"));
  ASSERT_EQ(dec.size(), 1u);
  EXPECT_EQ(dec[0]["text"], "Hello world");
  // Chat with the template recognised from tokenizer_config.json; roles by name and by id.
  prefopt::atomic_write(tmp + "/chat.jsonl",
                        "{\"messages\": [{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi\"},"
                        "{\"role\":\"assistant\",\"content\":\"Yo\"}]}\n");
  auto chat = lines(run("tokenize --tokenizer " + D + "qwen2 --chat --input " + tmp + "/chat.jsonl"));
  ASSERT_EQ(chat.size(), 1u);
  ASSERT_EQ(chat[0]["input_ids"].size(), chat[0]["roles"].size());
  EXPECT_EQ(chat[0]["input_ids"].back(), 198);     // "\n" after the last <|im_end|>
  EXPECT_EQ(chat[0]["roles"].back(), "template");
  size_t n = chat[0]["input_ids"].size();
  EXPECT_EQ(chat[0]["input_ids"][n - 2], 151645);  // the assistant's <|im_end|>
  EXPECT_EQ(chat[0]["roles"][n - 2], "assistant");
  auto ids = lines(run("tokenize --tokenizer " + D + "qwen2 --chat --role-ids --chat-template chatml --input " + tmp + "/chat.jsonl"));
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0]["roles"][n - 2], 3);
  // Prompt/completion rows: boundary and a counted mismatch warning naming file:line.
  prefopt::atomic_write(tmp + "/pc.jsonl",
                        "{\"prompt\": \"The answer is\", \"completion\": \" 42.\"}\n{\"prompt\": \"Hello wor\", \"completion\": \"ld\"}\n");
  int rc = 0;
  std::string out = run("tokenize --tokenizer " + D + "gpt2/tokenizer.json --input " + tmp + "/pc.jsonl", &rc, true);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find(tmp + "/pc.jsonl:2"), std::string::npos) << out;
  EXPECT_NE(out.find("1 with a prompt/completion tokenization mismatch"), std::string::npos) << out;
  auto pc = lines(out);
  ASSERT_EQ(pc.size(), 2u);
  EXPECT_EQ(pc[0]["boundary"], 3);
  EXPECT_EQ(pc[1]["prefix_ok"], false);
  // Errors name file:line; unknown template lists the built-ins.
  prefopt::atomic_write(tmp + "/bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n");
  out = run("tokenize --tokenizer " + D + "gpt2/tokenizer.json --input " + tmp + "/bad.jsonl", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find(tmp + "/bad.jsonl:2"), std::string::npos) << out;
  out = run("tokenize --tokenizer " + D + "gpt2/tokenizer.json --chat --chat-template vicuna --input " + tmp + "/chat.jsonl", &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("chatml, llama3"), std::string::npos) << out;
  prefopt::remove_all(tmp);
}

// prefopt apply-chat-template: rows rendered with the model's Jinja template equal Jinja2's
// output (the shared vectors); a row the template rejects gives {"error"} and exit 2.
TEST(ApplyChatTemplateCli, MatchesVectorsAndReportsRejectedRows) {
  if (!prefopt::file_exists(exe())) GTEST_SKIP() << "prefopt not built";
  using oj = nlohmann::ordered_json;
  std::string tmp = "/tmp/prefopt_act_cli_" + std::to_string(getpid());
  prefopt::make_dirs(tmp);
  std::vector<oj> vecs;
  {
    std::istringstream is(prefopt::read_file(PREFOPT_SHARED_DATA "/chat_templates/vectors.jsonl"));
    std::string l;
    while (std::getline(is, l))
      if (!l.empty()) {
        oj v = oj::parse(l);
        if (v["template_id"] == "mistral-7b-instruct-v0.1-original" || v["template_id"] == "llama-3.2-3b-instruct")
          vecs.push_back(v);
      }
  }
  ASSERT_EQ(vecs.size(), 24u);
  for (const char* id : {"mistral-7b-instruct-v0.1-original", "llama-3.2-3b-instruct"}) {
    std::string dir = tmp + "/" + id;
    prefopt::make_dirs(dir);
    oj cfg = oj::object();
    std::string rows;
    std::vector<const oj*> mine;
    for (auto& v : vecs)
      if (v["template_id"] == id) {
        cfg = v["special_tokens"];
        cfg["chat_template"] = v["template"];
        oj row = {{"messages", v["messages"]}, {"tools", v["tools"]}, {"add_generation_prompt", v["add_generation_prompt"]},
                  {"chat_template_kwargs", v["kwargs"]}};
        rows += row.dump() + "\n";
        mine.push_back(&v);
      }
    prefopt::atomic_write(dir + "/tokenizer_config.json", cfg.dump());
    prefopt::atomic_write(dir + "/rows.jsonl", rows);
    int rc = 0;
    std::string out = run("apply-chat-template --tokenizer " + dir + " --input " + dir + "/rows.jsonl --output " + dir +
                              "/out.jsonl",
                          &rc, true);
    EXPECT_EQ(rc, 2) << out;  // both templates reject some rows
    EXPECT_NE(out.find(dir + "/rows.jsonl:"), std::string::npos) << out;
    auto got = lines(prefopt::read_file(dir + "/out.jsonl"));
    ASSERT_EQ(got.size(), mine.size());
    size_t errors = 0, texts = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const oj& v = *mine[i];
      if (v["error"].get<bool>()) {
        ++errors;
        ASSERT_TRUE(got[i].contains("error")) << v["case_id"];
        std::string msg = v["message"].get<std::string>();
        // raise_exception rows carry the template's own text
        if (msg.rfind("TemplateError: ", 0) == 0) EXPECT_EQ(got[i]["error"].get<std::string>(), msg);
      } else {
        ++texts;
        ASSERT_TRUE(got[i].contains("text")) << v["case_id"] << " " << got[i].dump();
        std::string want = v["expected"].get<std::string>();
        std::string g = got[i]["text"].get<std::string>();
        if (std::string(id) == "llama-3.2-3b-instruct") {  // the date line comes from today's clock
          size_t a = want.find("Today Date: "), b = g.find("Today Date: ");
          ASSERT_NE(a, std::string::npos);
          ASSERT_NE(b, std::string::npos);
          want.erase(a, want.find('\n', a) - a);
          g.erase(b, g.find('\n', b) - b);
        }
        EXPECT_EQ(g, want) << v["case_id"];
      }
    }
    EXPECT_GT(errors, 0u);
    EXPECT_GT(texts, 5u);
  }
  // A malformed row stops with file:line.
  prefopt::atomic_write(tmp + "/bad.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{\"msgs\": []}\n");
  int rc = 0;
  std::string out = run("apply-chat-template --tokenizer " + tmp + "/llama-3.2-3b-instruct --input " + tmp + "/bad.jsonl",
                        &rc, true);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find(tmp + "/bad.jsonl:2"), std::string::npos) << out;
  EXPECT_NE(out.find("HINT"), std::string::npos) << out;
}
