// Single-thread encode throughput (MB/s, tokens/s) on GSM8K train (question + answer),
// for the gpt-2 (tokenizer.json) and qwen2 (vocab.json + merges.txt) vocabularies,
// plus llama3 (tiktoken) and phi3 (SentencePiece BPE). Prints one JSON line per vocab.
// Usage: prefopt_tokenizer_bench [--rows N] [--repeat R]
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/jsonl.h"
#include "core/log.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  size_t rows = 0;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--rows")) rows = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--repeat")) repeat = std::stoi(argv[++i]);
  }
  const std::string data = PREFOPT_SHARED_DATA;
  std::vector<std::string> texts;
  size_t bytes = 0;
  prefopt::for_each_jsonl(data + "/gsm8k/train.jsonl", [&](const prefopt::json& r, size_t) {
    if (rows && texts.size() >= rows) return;
    texts.push_back(r["question"].get<std::string>() + "\n" + r["answer"].get<std::string>());
    bytes += texts.back().size();
  });
  struct V {
    const char* name;
    std::string path;
  } vocabs[] = {{"gpt-2", data + "/tokenizers/gpt2/tokenizer.json"},
                {"qwen2", data + "/tokenizers/qwen2"},
                {"llama3", data + "/tokenizers/llama3/tokenizer.model"},
                {"phi3", data + "/tokenizers/phi3/tokenizer.json"}};
  for (const auto& v : vocabs) {
    double t0 = prefopt::now_seconds();
    auto tok = prefopt::Tokenizer::load(v.path);
    double load_s = prefopt::now_seconds() - t0;
    double best = 1e30;
    size_t ntok = 0;
    for (int r = 0; r < repeat; ++r) {
      ntok = 0;
      double t = prefopt::now_seconds();
      for (const auto& s : texts) ntok += tok.encode(s).size();
      best = std::min(best, prefopt::now_seconds() - t);
    }
    nlohmann::json j;
    j["bench"] = "tokenizer_encode";
    j["vocab"] = v.name;
    j["rows"] = texts.size();
    j["bytes"] = bytes;
    j["tokens"] = ntok;
    j["seconds"] = best;
    j["MB_per_s"] = bytes / best / 1e6;
    j["tokens_per_s"] = ntok / best;
    j["load_seconds"] = load_s;
    j["threads"] = 1;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}
