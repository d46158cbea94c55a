// UTF-8 helpers and GPT-2's byte <-> unicode alphabet (openai/gpt-2 encoder.py
// bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100..).
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdlib>

#include "tokenizer/tokenizer_impl.h"

namespace prefopt {

size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

std::string encode_cp(uint32_t cp) {
  std::string o;
  if (cp < 0x80) {
    o += char(cp);
  } else if (cp < 0x800) {
    o += char(0xC0 | (cp >> 6));
    o += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    o += char(0xE0 | (cp >> 12));
    o += char(0x80 | ((cp >> 6) & 0x3F));
    o += char(0x80 | (cp & 0x3F));
  } else {
    o += char(0xF0 | (cp >> 18));
    o += char(0x80 | ((cp >> 12) & 0x3F));
    o += char(0x80 | ((cp >> 6) & 0x3F));
    o += char(0x80 | (cp & 0x3F));
  }
  return o;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (overlongs, surrogates,
// > U+10FFFF and truncation are invalid, as in Rust's from_utf8).
static size_t valid_seq(std::string_view s, size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char d = s[i + k];
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = valid_seq(s, i);
    if (!n) return false;
    i += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t n = valid_seq(s, i);
    if (n) {
      o.append(s.data() + i, n);
      i += n;
    } else {
      o += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return o;
}

uint32_t decode_cp(std::string_view s, size_t& i) {
  unsigned char c = s[i];
  size_t n = utf8_len(c);
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

namespace {
struct ByteMap {
  std::array<std::string, 256> to_uni;
  std::array<int, 512> from_uni;
  ByteMap() {
    from_uni.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      uint32_t cp = keep ? b : 256 + extra++;
      to_uni[b] = encode_cp(cp);
      from_uni[cp] = b;
    }
  }
};
const ByteMap& bytemap() {
  static const ByteMap m;
  return m;
}
}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return bytemap().to_uni[b]; }
int unicode_to_byte(uint32_t cp) { return cp < 512 ? bytemap().from_uni[cp] : -1; }

}  // namespace prefopt

// ---- Unicode normalization forms (utf8proc) ----
namespace prefopt {

namespace {

std::string utf8proc_form(std::string_view s, UnicodeForm f) {
  int opts = UTF8PROC_STABLE;
  if (f == UnicodeForm::NFC || f == UnicodeForm::NFKC) opts |= UTF8PROC_COMPOSE;
  else opts |= UTF8PROC_DECOMPOSE;
  if (f == UnicodeForm::NFKC || f == UnicodeForm::NFKD) opts |= UTF8PROC_COMPAT;
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &out, static_cast<utf8proc_option_t>(opts));
  if (n < 0) {  // invalid UTF-8: normalize the sanitized text
    std::free(out);
    if (valid_utf8(s)) return std::string(s);
    return utf8proc_form(sanitize_utf8(s), f);
  }
  std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

bool all_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace

std::string unicode_normalize(std::string_view s, UnicodeForm f) {
  if (all_ascii(s)) return std::string(s);  // ASCII is invariant under all four forms
  return utf8proc_form(s, f);
}

// Each output byte keeps the offset (in s) of the segment that produced it. Segments start
// at a character of canonical combining class 0; when normalizing them one by one does not
// give the whole string's normal form (a rare backward-composing starter such as a Hangul
// vowel jamo), every output byte maps to the first input byte instead.
std::string unicode_lowercase_aligned(std::string_view s, std::vector<uint32_t>& align) {
  std::string out;
  align.clear();
  size_t i = 0;
  while (i < s.size()) {
    size_t b = i;
    uint32_t cp = decode_cp(s, i);
    std::string lc;
    if (cp < 0x80) lc = char(cp >= 'A' && cp <= 'Z' ? cp - 'A' + 'a' : cp);
    else if (cp == 0x130) lc = "i\xCC\x87";  // Rust's char::to_lowercase: U+0130 -> "i\u0307"
    else lc = encode_cp(static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    out += lc;
    align.insert(align.end(), lc.size(), static_cast<uint32_t>(b));
  }
  return out;
}

std::string unicode_normalize_aligned(std::string_view s, UnicodeForm f, std::vector<uint32_t>& align) {
  align.clear();
  std::string whole = unicode_normalize(s, f);
  if (whole == s) {
    for (size_t i = 0; i < s.size(); ++i) align.push_back(static_cast<uint32_t>(i));
    return whole;
  }
  std::string pieces;
  size_t i = 0;
  while (i < s.size()) {
    size_t b = i;
    size_t l = utf8_len(static_cast<unsigned char>(s[i]));
    i = std::min(s.size(), i + l);
    while (i < s.size()) {
      size_t j = i;
      uint32_t cp = decode_cp(s, j);
      if (utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class == 0) break;
      i = j;
    }
    std::string seg = unicode_normalize(s.substr(b, i - b), f);
    pieces += seg;
    align.insert(align.end(), seg.size(), static_cast<uint32_t>(b));
  }
  if (pieces != whole) align.assign(whole.size(), 0);
  return whole;
}

}  // namespace prefopt
