// prefopt data: TRL-format JSONL -> token ids with per-token loss masks.
//
// Row formats (the same JSON keys as TRL's datasets; see docs/training.md):
//   paired     {prompt, chosen, rejected}             text or conversational (lists of {role, content})
//              {chosen, rejected}                     implicit prompt: the shared prefix is the prompt
//              {prompt_input_ids, chosen_input_ids, rejected_input_ids}   pre-tokenized, used exactly
//   triple     {prompt, chosen, rejected, reference}  Triple-PO: `reference` is the gold response
//   unpaired   {prompt, completion, label}            KTO / BCO (label: bool)
//              {prompt_input_ids, completion_input_ids, label}
//   sft        {prompt, completion} | {messages} | {text} | {prompt_input_ids, completion_input_ids}
// Pre-tokenized completions may carry "<name>_loss_mask" (0/1 per token: chosen_loss_mask,
// rejected_loss_mask, reference_loss_mask, completion_loss_mask), as a round's pairs.jsonl does.
// Files are JSONL or one JSON array; LLaMA-Factory's sharegpt / alpaca rows are mapped to
// these first (data/formats.h).
//
// Text rows follow TRL >= 0.12's tokenize_row: prompt and completions are
// tokenized separately without special tokens; BOS is prepended to the prompt
// when the tokenizer has one; EOS is appended to each completion.
// Conversational rows are rendered with the chat template as one conversation
// (prompt + completion) so every token carries its role; the completion's loss
// mask is TRL's assistant mask: assistant content and end-of-turn markers count,
// template scaffolding never, tool observations only when
// mask_tool_observations = false (multi-turn M-DPO / M-KTO mask them).
//
// Truncation (TRL's semantics, in this order): a prompt longer than
// max_prompt_length keeps its last tokens (truncation_mode "keep_end") or its
// first ("keep_start"); a prompt that still leaves no room for a completion
// (>= max_length tokens) is a counted skip with a warning naming file:line;
// each completion keeps its first max_length - len(prompt) tokens (and at most
// max_completion_length when set). Malformed rows (missing or empty fields,
// wrong types, unknown roles) are errors naming file:line and what to do.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace prefopt {

class Tokenizer;
class ChatTemplate;

enum class DataKind { Paired, Triple, Unpaired, Sft };
DataKind data_kind_for_method(const std::string& method);  // dpo/cpo/simpo/orpo -> Paired, tpo -> Triple, ...
const char* to_string(DataKind k);

struct Completion {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // 1 = this token is scored (same length as ids)
};

struct Example {
  size_t line = 0;                       // 1-based line in the source file
  std::vector<int32_t> prompt;
  std::vector<Completion> completions;   // paired: chosen, rejected; triple: + gold; unpaired/sft: one
  int label = -1;                        // unpaired: 1 desirable, 0 undesirable
  int64_t tokens() const;
};

struct DataOptions {
  int64_t max_length = 1024;
  int64_t max_prompt_length = 512;
  int64_t max_completion_length = 0;     // 0 = no limit beyond max_length
  std::string truncation_mode = "keep_end";
  bool mask_tool_observations = true;
};

struct Dataset {
  std::string path;
  DataKind kind = DataKind::Paired;
  std::vector<Example> rows;
  size_t skipped = 0, truncated = 0, pretokenized = 0;
  std::string hash;                      // FNV-1a 64 of the file bytes and the options, hex
};

// tok / tmpl may be null when every row is pre-tokenized (text rows then fail
// with a message saying what to pass). vocab_size > 0 checks pre-tokenized ids.
Dataset load_dataset(const std::string& path, DataKind kind, const Tokenizer* tok, const ChatTemplate* tmpl,
                     const DataOptions& opt, int64_t vocab_size = 0);

// TRL's extract_prompt for text: the longest common prefix, moved back so the
// completions keep a leading space ("...Assistant:" | " Sure").
size_t implicit_prompt_length(const std::string& chosen, const std::string& rejected);

// Deterministic 64-bit FNV-1a, hex.
std::string fnv1a_hex(const std::string& bytes, uint64_t h = 1469598103934665603ull);

}  // namespace prefopt
