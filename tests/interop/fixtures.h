// Model directories for the GGUF tests: the shared tiny random Llama / Mistral / Qwen2
// (config + weights, no tokenizer) copied to a temp directory, each given a tokenizer of
// its vocabulary size:
//   llama   (320): SentencePiece-style BPE with byte fallback (llama.cpp vocab "llama"),
//                  written by hand below;
//   mistral (256): byte-level BPE, 256 byte tokens, GPT-2 pre-tokenizer ("gpt2" / "gpt-2");
//   qwen2   (384): byte-level BPE trained on GSM8K questions, Qwen2 pre-tokenizer and
//                  ChatML special tokens plus a chat_template ("gpt2" / "qwen2").
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "tokenizer/tokenizer.h"

namespace prefopt::testing {

inline std::string shared_model(const std::string& name) { return std::string(PREFOPT_SHARED_DATA) + "/models/" + name; }

inline std::vector<std::string> gsm8k_questions(size_t n) {
  std::ifstream f(std::string(PREFOPT_SHARED_DATA) + "/gsm8k/train.jsonl");
  std::vector<std::string> out;
  std::string line;
  if (!f) throw std::runtime_error("cannot read gsm8k/train.jsonl under " + std::string(PREFOPT_SHARED_DATA));
  while (out.size() < n && std::getline(f, line)) out.push_back(nlohmann::json::parse(line)["question"]);
  return out;
}

constexpr const char* kChatTemplate =
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// A tokenizer.json: SentencePiece-style BPE of 320 tokens: <unk> <s> </s>, the 256 byte
// fallback tokens, "▁" and a-z, then 34 merges ("▁a".."▁z", in er an on he ▁the es ▁an).
// Every piece that two adjacent pieces can join into is a merge, so the pair-rank BPE of
// HF and the score-ordered merging of llama.cpp agree.
inline std::string spm_tokenizer_json() {
  using json = nlohmann::json;
  const std::string sp = "\xE2\x96\x81";
  json vocab = json::object();
  int id = 0;
  for (const char* s : {"<unk>", "<s>", "</s>"}) vocab[s] = id++;
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab[buf] = id++;
  }
  vocab[sp] = id++;
  for (char c = 'a'; c <= 'z'; ++c) vocab[std::string(1, c)] = id++;
  json merges = json::array();
  auto merge = [&](const std::string& a, const std::string& b) {
    merges.push_back(json::array({a, b}));
    vocab[a + b] = id++;
  };
  for (char c = 'a'; c <= 'z'; ++c) merge(sp, std::string(1, c));
  merge("i", "n"), merge("e", "r"), merge("a", "n"), merge("o", "n"), merge("h", "e");
  merge(sp + "t", "he"), merge("e", "s"), merge(sp + "a", "n");
  json added = json::array();
  for (int i = 0; i < 3; ++i)
    added.push_back({{"id", i}, {"content", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}});
  json j = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", sp}}, {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}}};
  return j.dump();
}

// Copies the shared model `name` into `dir` and writes its tokenizer there.
inline void make_model_dir(const std::string& name, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(shared_model(name) + "/" + f, dir + "/" + f);
  if (name == "llama") {
    atomic_write(dir + "/tokenizer.json", spm_tokenizer_json());
  } else if (name == "mistral") {
    train_bpe(gsm8k_questions(200), 256, {}).save_pretrained(dir);
  } else if (name == "qwen2") {
    train_bpe(gsm8k_questions(400), 384, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, /*split_digits=*/true)
        .save_pretrained(dir);
    auto cfg = nlohmann::json::parse(read_file(dir + "/tokenizer_config.json"));
    cfg["chat_template"] = kChatTemplate;
    atomic_write(dir + "/tokenizer_config.json", cfg.dump(2));
  }
}

}  // namespace prefopt::testing
