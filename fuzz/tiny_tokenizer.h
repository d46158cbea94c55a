// A small byte-level BPE tokenizer (prefopt's trainer on a fixed corpus, with
// ChatML / Llama-3 special tokens) for the targets that need one, built once.
#pragma once
#include "tokenizer/tokenizer.h"

namespace prefopt::fuzz {

inline const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tok = train_bpe(
      {"Hello world! The answer is 42.", "user: what is 2 + 3? assistant: 2 + 3 = 5", "def f(x):\n    return x * 2\n",
       "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."},
      300, {"<|im_start|>", "<|im_end|>", "<s>", "</s>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"});
  return tok;
}

}  // namespace prefopt::fuzz
