// Fuzz target: the JSONL row parsers. The input is written to a scratch .jsonl
// file and read by for_each_jsonl, by the training-data loader for every row
// format (paired, triple, unpaired, sft; text, conversational and
// pre-tokenized rows) with a small tokenizer and the ChatML template, and by
// the results readers of the graders (pass@k counts, graded samples for
// pairs). Every malformed row must be a prefopt::Error naming file:line.
#include <nlohmann/json.hpp>

#include "core/jsonl.h"
#include "data/dataset.h"
#include "fuzz/fuzz_common.h"
#include "fuzz/tiny_tokenizer.h"
#include "tokenizer/chat_template.h"
#include "verify/results_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static prefopt::fuzz::ScratchFile file(".jsonl");
  static const prefopt::ChatTemplate chatml = prefopt::ChatTemplate::by_name("chatml");
  const std::string& path = file.write(data, size);
  const prefopt::Tokenizer& tok = prefopt::fuzz::tiny_tokenizer();
  prefopt::fuzz::fuzz_guard([&] {
    size_t rows = 0;
    prefopt::for_each_jsonl(path, [&](const nlohmann::json&, size_t) { ++rows; });
  });
  prefopt::DataOptions opt;
  opt.max_length = 64;
  opt.max_prompt_length = 32;
  for (auto kind : {prefopt::DataKind::Paired, prefopt::DataKind::Triple, prefopt::DataKind::Unpaired,
                    prefopt::DataKind::Sft}) {
    prefopt::fuzz::fuzz_guard([&] {
      auto ds = prefopt::load_dataset(path, kind, &tok, &chatml, opt, tok.vocab_size());
      for (const auto& ex : ds.rows)
        for (const auto& c : ex.completions)
          if (c.ids.size() != c.mask.size()) std::abort();
    });
  }
  prefopt::fuzz::fuzz_guard([&] { (void)prefopt::read_results(path); });
  prefopt::fuzz::fuzz_guard([&] { (void)prefopt::read_graded_samples(path); });
  return 0;
}
