// prefopt model: import of llama2.c "legacy" checkpoints (karpathy/llama2.c,
// run.c's format: 7 little-endian int32 dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size (negative = separate classifier), seq_len, then fp32
// tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
// freq_cis_real, freq_cis_imag [, wcls]).
#pragma once
#include <memory>
#include <string>

#include "model/model.h"

namespace prefopt {

// Reads a llama2.c checkpoint into an HF-layout Llama: q/k rows permuted from
// llama2.c's interleaved RoPE pairs to HF's rotate_half halves (the inverse of
// the permutation in transformers' convert_llama_weights_to_hf.py), w1/w3/w2 ->
// gate/up/down, rms eps 1e-5, bos 1, eos 2. Errors name the file and what is off.
std::unique_ptr<CausalLM> load_llama2c(const std::string& path);

}  // namespace prefopt
