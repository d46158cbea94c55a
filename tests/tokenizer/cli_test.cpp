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
