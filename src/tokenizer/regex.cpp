// PCRE2 wrapper for the pre-tokenizer split patterns (\p{L}, \p{N} need Unicode classes;
// std::regex cannot). Compiled with UTF + UCP so \s, \w, \d are Unicode-aware as in
// Oniguruma (HF tokenizers) and JIT-compiled for speed. Inputs are valid UTF-8
// (sanitized before), so matching skips the UTF check.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "core/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace prefopt {

Regex::Regex(const std::string& pattern, bool multiline) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  uint32_t opts = PCRE2_UTF | PCRE2_UCP | (multiline ? PCRE2_MULTILINE : 0);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    fail("tokenizer regex", fmt::format("cannot compile pattern {:?} at offset {}: {}", pattern, off,
                                        reinterpret_cast<const char*>(buf)),
         "the pre_tokenizer pattern must be a valid (Oniguruma/PCRE) regex");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if unavailable
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view s, size_t b, size_t e, std::vector<std::pair<size_t, size_t>>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  // One match block per thread, freed when the thread exits.
  struct FreeMatchData {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
  };
  thread_local std::unique_ptr<pcre2_match_data, FreeMatchData> md_owner(pcre2_match_data_create(32, nullptr));
  pcre2_match_data* md = md_owner.get();
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data() + b);
  size_t len = e - b, pos = 0;
  while (pos <= len) {
    int rc = pcre2_match(code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      fail("tokenizer regex", fmt::format("matching failed: {}", reinterpret_cast<const char*>(buf)),
           "report the input text; the pattern is " + pattern_);
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t ms = ov[0], me = ov[1];
    if (me == ms) {  // empty match: skip one character
      if (ms >= len) break;
      pos = ms + utf8_len(static_cast<unsigned char>(s[b + ms]));
      continue;
    }
    out.emplace_back(b + ms, b + me);
    pos = me;
  }
}

}  // namespace prefopt
