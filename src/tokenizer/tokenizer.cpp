// Tokenizer: encode/decode through the HF `tokenizers` pipeline.
// Matches tokenizers' TokenizerImpl::encode_single_sequence: added tokens are split out
// first (AddedVocabulary::extract_and_normalize), every other segment is normalized,
// pre-tokenized and run through the BPE model (models/bpe/model.rs: merges by rank,
// leftmost first on ties, byte fallback, ignore_merges), then the post-processor adds
// its template tokens.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <atomic>
#include <cctype>
#include <queue>

#include "core/error.h"
#include "core/fs.h"
#include "tokenizer/tokenizer_impl.h"

namespace prefopt {

// ------------------------------------------------------------------ BPE model
void TokenizerImpl::bpe(std::string_view piece, std::vector<int32_t>& ids) const {
  const BpeModel& m = model;
  if (piece.empty()) return;
  if (m.ignore_merges) {
    auto it = m.vocab.find(std::string(piece));
    if (it != m.vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  struct Sym {
    int32_t id;
    int32_t prev, next;
  };
  std::vector<Sym> sym;
  sym.reserve(piece.size());
  // Initial symbols: one per character (byte-level: one per byte of the original text).
  auto push = [&](int32_t id) { sym.push_back({id, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1}); };
  bool last_unk = false;
  for (size_t i = 0; i < piece.size();) {
    size_t n = utf8_len(static_cast<unsigned char>(piece[i]));
    if (i + n > piece.size()) n = 1;
    std::string_view ch = piece.substr(i, n);
    int32_t id = -1;
    if (byte_level && n <= 2) {
      uint32_t cp;
      size_t k = i;
      cp = decode_cp(piece, k);
      int b = unicode_to_byte(cp);
      if (b >= 0) id = m.bl_ids[b];
    }
    if (id < 0) {
      auto it = m.vocab.find(std::string(ch));
      if (it != m.vocab.end()) id = it->second;
    }
    if (id >= 0) {
      push(id);
      last_unk = false;
    } else if (m.byte_fallback && m.byte_ids[static_cast<unsigned char>(ch[0])] >= 0) {
      bool ok = true;
      for (char c : ch) ok = ok && m.byte_ids[static_cast<unsigned char>(c)] >= 0;
      if (ok) {
        for (char c : ch) push(m.byte_ids[static_cast<unsigned char>(c)]);
      } else if (m.unk >= 0) {
        push(m.unk);
      }
      last_unk = false;
    } else if (m.unk >= 0) {
      if (!(m.fuse_unk && last_unk)) push(m.unk);
      last_unk = true;
    }  // else: no unk token -> the character is dropped, as HF's BPE does
    i += n;
  }
  if (sym.empty()) return;
  sym.back().next = -1;
  const size_t n = sym.size();
  if (n > 1) {
    struct Cand {
      uint32_t rank;
      int32_t pos;
      int32_t left, right, out;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> pq;
    auto try_pair = [&](int32_t a) {
      if (a < 0) return;
      int32_t b = sym[a].next;
      if (b < 0) return;
      uint64_t key = (uint64_t(uint32_t(sym[a].id)) << 32) | uint32_t(sym[b].id);
      auto it = m.merges.find(key);
      if (it != m.merges.end()) pq.push({it->second.first, a, sym[a].id, sym[b].id, it->second.second});
    };
    for (size_t i = 0; i + 1 < n; ++i) try_pair(int32_t(i));
    std::vector<char> dead(n, 0);
    while (!pq.empty()) {
      Cand c = pq.top();
      pq.pop();
      if (dead[c.pos] || sym[c.pos].id != c.left) continue;
      int32_t b = sym[c.pos].next;
      if (b < 0 || sym[b].id != c.right) continue;
      sym[c.pos].id = c.out;
      dead[b] = 1;
      sym[c.pos].next = sym[b].next;
      if (sym[b].next >= 0) sym[sym[b].next].prev = c.pos;
      try_pair(sym[c.pos].prev);
      try_pair(c.pos);
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
}

uint64_t TokenizerImpl::next_serial() {
  static std::atomic<uint64_t> n{0};
  return ++n;
}

void TokenizerImpl::bpe_cached(std::string_view piece, std::vector<int32_t>& ids) const {
  struct Cache {
    uint64_t owner = 0;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  thread_local Cache cache;
  if (piece.size() > 64) return bpe(piece, ids);
  if (cache.owner != serial) {
    cache.map.clear();
    cache.owner = serial;
  }
  thread_local std::string key;
  key.assign(piece.data(), piece.size());
  auto it = cache.map.find(key);
  if (it != cache.map.end()) {
    ids.insert(ids.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t first = ids.size();
  bpe(piece, ids);
  if (cache.map.size() >= 100000) cache.map.clear();
  cache.map.emplace(key, std::vector<int32_t>(ids.begin() + first, ids.end()));
}

std::optional<int32_t> TokenizerImpl::token_id(std::string_view t) const {
  for (const auto& a : added)
    if (a.content == t) return a.id;
  auto it = model.vocab.find(std::string(t));
  if (it != model.vocab.end()) return it->second;
  return std::nullopt;
}

std::string TokenizerImpl::token_str(int32_t id) const {
  auto it = added_by_id.find(id);
  if (it != added_by_id.end()) return added[it->second].content;
  if (id >= 0 && size_t(id) < model.id_to_token.size()) return model.id_to_token[id];
  return "";
}

void TokenizerImpl::finalize() {
  BpeModel& m = model;
  std::fill(std::begin(m.byte_ids), std::end(m.byte_ids), -1);
  std::fill(std::begin(m.bl_ids), std::end(m.bl_ids), -1);
  for (int b = 0; b < 256; ++b) {
    auto it = m.vocab.find(fmt::format("<0x{:02X}>", b));
    if (it != m.vocab.end()) m.byte_ids[b] = it->second;
    auto jt = m.vocab.find(byte_to_unicode(uint8_t(b)));
    if (jt != m.vocab.end()) m.bl_ids[b] = jt->second;
  }
  added_by_id.clear();
  added_by_first_byte.assign(256, {});
  int32_t top = int32_t(m.id_to_token.size());
  for (size_t i = 0; i < added.size(); ++i) {
    added_by_id[added[i].id] = i;
    top = std::max(top, added[i].id + 1);
    if (!added[i].content.empty())
      added_by_first_byte[static_cast<unsigned char>(added[i].content[0])].push_back(i);
  }
  for (auto& v : added_by_first_byte)
    std::stable_sort(v.begin(), v.end(),
                     [&](size_t a, size_t b) { return added[a].content.size() > added[b].content.size(); });
  vocab_size = top;
  token_nbytes.assign(top, 0);
  for (int32_t id = 0; id < top; ++id) {
    std::string s = token_str(id);
    uint32_t nb = 0;
    if (added_by_id.count(id)) {
      nb = uint32_t(s.size());
    } else if (s.size() == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && m.byte_fallback) {
      nb = 1;
    } else if (byte_level) {
      for (size_t i = 0; i < s.size();) {
        i += utf8_len(static_cast<unsigned char>(s[i]));
        ++nb;
      }
    } else {
      nb = uint32_t(s.size());
    }
    token_nbytes[id] = nb;
  }
}

// ------------------------------------------------------------------ encode
namespace {

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_word_byte(unsigned char c) { return c >= 0x80 || std::isalnum(c) || c == '_'; }

struct Segment {
  size_t b, e;       // range in the text
  int32_t added_id;  // -1: ordinary text
};

// HF AddedVocabulary: leftmost-longest match of added tokens, honoring single_word,
// lstrip (the match swallows whitespace on its left) and rstrip (on its right).
std::vector<Segment> split_added(const TokenizerImpl& t, std::string_view s) {
  std::vector<Segment> out;
  size_t last = 0;
  if (t.added.empty()) {
    out.push_back({0, s.size(), -1});
    return out;
  }
  for (size_t i = 0; i < s.size();) {
    const auto& cands = t.added_by_first_byte[static_cast<unsigned char>(s[i])];
    const AddedToken* hit = nullptr;
    for (size_t ci : cands) {
      const AddedToken& a = t.added[ci];
      if (s.compare(i, a.content.size(), a.content) != 0) continue;
      if (a.single_word) {
        size_t end = i + a.content.size();
        if (i > 0 && is_word_byte(s[i - 1])) continue;
        if (end < s.size() && is_word_byte(s[end])) continue;
      }
      hit = &a;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t mb = i, me = i + hit->content.size();
    if (hit->lstrip)
      while (mb > last && is_ws(s[mb - 1])) --mb;
    if (hit->rstrip)
      while (me < s.size() && is_ws(s[me])) ++me;
    if (mb > last) out.push_back({last, mb, -1});
    out.push_back({mb, me, hit->id});
    last = me;
    i = me;
  }
  if (last < s.size()) out.push_back({last, s.size(), -1});
  return out;
}

// A normalized string with, per byte, the offset in the original text (size()+1 entries).
struct Norm {
  std::string s;
  std::vector<uint32_t> align;
};

void apply_norm(const NormStep& st, Norm& n) {
  switch (st.kind) {
    case NormKind::Identity:
      return;
    case NormKind::Prepend: {
      if (n.s.empty()) return;
      n.s.insert(0, st.a);
      n.align.insert(n.align.begin(), st.a.size(), n.align[0]);
      return;
    }
    case NormKind::Lowercase:
    case NormKind::Unicode: {
      std::vector<uint32_t> at;
      std::string o = st.kind == NormKind::Lowercase ? unicode_lowercase_aligned(n.s, at)
                                                     : unicode_normalize_aligned(n.s, st.form, at);
      if (o == n.s) return;
      std::vector<uint32_t> align;
      align.reserve(o.size() + 1);
      for (uint32_t k : at) align.push_back(n.align[k]);
      align.push_back(n.align.back());
      n.s = std::move(o);
      n.align = std::move(align);
      return;
    }
    case NormKind::Strip: {
      size_t b = 0, e = n.s.size();
      if (st.left)
        while (b < e && is_ws(n.s[b])) ++b;
      if (st.right)
        while (e > b && is_ws(n.s[e - 1])) --e;
      n.s = n.s.substr(b, e - b);
      n.align = std::vector<uint32_t>(n.align.begin() + b, n.align.begin() + e + 1);
      return;
    }
    case NormKind::Replace: {
      std::vector<std::pair<size_t, size_t>> m;
      if (st.re) {
        st.re->find_all(n.s, 0, n.s.size(), m);
      } else if (!st.a.empty()) {
        for (size_t p = n.s.find(st.a); p != std::string::npos; p = n.s.find(st.a, p + st.a.size()))
          m.emplace_back(p, p + st.a.size());
      }
      if (m.empty()) return;
      Norm o;
      size_t last = 0;
      for (auto [b, e] : m) {
        o.s.append(n.s, last, b - last);
        o.align.insert(o.align.end(), n.align.begin() + last, n.align.begin() + b);
        o.s += st.b;
        o.align.insert(o.align.end(), st.b.size(), n.align[b]);
        last = e;
      }
      o.s.append(n.s, last, std::string::npos);
      o.align.insert(o.align.end(), n.align.begin() + last, n.align.end());
      n = std::move(o);
      return;
    }
  }
}

struct Piece {
  uint32_t b, e;
  bool prefix_space = false;
};

void split_pieces(const Regex& re, SplitBehavior beh, bool invert, const std::string& s,
                  std::vector<Piece>& pieces) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  std::vector<std::pair<size_t, size_t>> m;
  for (const Piece& p : pieces) {
    m.clear();
    re.find_all(s, p.b, p.e, m);
    // Parts: (b, e, is_match)
    struct Part {
      uint32_t b, e;
      bool match;
    };
    std::vector<Part> parts;
    uint32_t last = p.b;
    for (auto [b, e] : m) {
      if (b > last) parts.push_back({last, uint32_t(b), invert});
      parts.push_back({uint32_t(b), uint32_t(e), !invert});
      last = uint32_t(e);
    }
    if (last < p.e) parts.push_back({last, p.e, invert});
    std::vector<Piece> local;
    switch (beh) {
      case SplitBehavior::Isolated:
        for (auto& q : parts) local.push_back({q.b, q.e});
        break;
      case SplitBehavior::Removed:
        for (auto& q : parts)
          if (!q.match) local.push_back({q.b, q.e});
        break;
      case SplitBehavior::Contiguous:
        for (size_t i = 0; i < parts.size(); ++i) {
          if (parts[i].match && !local.empty() && i > 0 && parts[i - 1].match)
            local.back().e = parts[i].e;
          else
            local.push_back({parts[i].b, parts[i].e});
        }
        break;
      case SplitBehavior::MergedWithPrevious:
        for (size_t i = 0; i < parts.size(); ++i) {
          if (parts[i].match && !local.empty())
            local.back().e = parts[i].e;
          else
            local.push_back({parts[i].b, parts[i].e});
        }
        break;
      case SplitBehavior::MergedWithNext: {
        bool pending = false;
        for (size_t i = 0; i < parts.size(); ++i) {
          if (pending)
            local.back().e = parts[i].e;
          else
            local.push_back({parts[i].b, parts[i].e});
          pending = parts[i].match;
        }
        break;
      }
    }
    if (!local.empty()) local.front().prefix_space = p.prefix_space;
    for (auto& q : local) out.push_back(q);
  }
  pieces.swap(out);
}


}  // namespace

// Encodes one ordinary (non-added) segment, appending ids and original offsets.
static void encode_segment(const TokenizerImpl& t, std::string_view text, size_t seg_b, size_t seg_e,
                           bool at_start, std::vector<int32_t>& ids,
                           std::vector<std::pair<size_t, size_t>>* offs) {
  Norm n;
  n.s.assign(text.data() + seg_b, seg_e - seg_b);
  bool aligned = !t.norm.empty() || offs;
  bool has_meta = false;
  for (auto& p : t.pre) has_meta |= p.kind == PreKind::Metaspace;
  aligned = aligned || has_meta;
  if (aligned) {
    n.align.resize(n.s.size() + 1);
    for (size_t i = 0; i <= n.s.size(); ++i) n.align[i] = uint32_t(seg_b + i);
    for (const auto& st : t.norm) apply_norm(st, n);
  }
  std::vector<Piece> pieces{{0, uint32_t(n.s.size())}};
  for (const PreStep& st : t.pre) {
    switch (st.kind) {
      case PreKind::Split:
        split_pieces(*st.re, st.behavior, st.invert, n.s, pieces);
        break;
      case PreKind::ByteLevel:
        // HF prepends the space to each incoming piece before its regex split. When the
        // piece is the whole segment (ByteLevel first, the usual case) it is prepended for
        // real; otherwise the piece is marked and the space is added at BPE time.
        if (st.add_prefix_space) {
          if (pieces.size() == 1 && pieces[0].b == 0 && pieces[0].e == n.s.size()) {
            if (!n.s.empty() && n.s[0] != ' ') {
              if (n.align.empty()) {
                n.align.resize(n.s.size() + 1);
                for (size_t i = 0; i <= n.s.size(); ++i) n.align[i] = uint32_t(seg_b + i);
              }
              NormStep pre{NormKind::Prepend, " "};
              apply_norm(pre, n);
              pieces = {{0, uint32_t(n.s.size())}};
            }
          } else {
            for (auto& p : pieces)
              if (p.e > p.b && n.s[p.b] != ' ') p.prefix_space = true;
          }
        }
        if (st.re) split_pieces(*st.re, SplitBehavior::Isolated, false, n.s, pieces);
        break;
      case PreKind::Metaspace: {
        // Replace ' ' by the replacement and prepend it (scheme), then split before each.
        NormStep rep{NormKind::Replace, " ", st.replacement};
        apply_norm(rep, n);
        bool prepend = st.prepend_scheme == 2 || (st.prepend_scheme == 1 && at_start);
        if (prepend && n.s.compare(0, st.replacement.size(), st.replacement) != 0) {
          NormStep pre{NormKind::Prepend, st.replacement};
          apply_norm(pre, n);
        }
        pieces = {{0, uint32_t(n.s.size())}};
        if (st.split) {
          static thread_local std::unique_ptr<Regex> re;
          if (!re || re->pattern() != st.replacement) re = std::make_unique<Regex>(st.replacement);
          split_pieces(*re, SplitBehavior::MergedWithNext, false, n.s, pieces);
        }
        break;
      }
    }
  }
  std::string buf;
  for (const Piece& p : pieces) {
    if (p.e <= p.b) continue;
    size_t first = ids.size();
    if (t.byte_level) {
      buf.clear();
      if (p.prefix_space) buf += byte_to_unicode(' ');
      for (uint32_t i = p.b; i < p.e; ++i) buf += byte_to_unicode(static_cast<unsigned char>(n.s[i]));
      t.bpe_cached(buf, ids);
    } else {
      if (p.prefix_space) {
        buf = " " + n.s.substr(p.b, p.e - p.b);
        t.bpe_cached(buf, ids);
      } else {
        t.bpe_cached(std::string_view(n.s).substr(p.b, p.e - p.b), ids);
      }
    }
    if (offs) {
      int64_t pos = int64_t(p.b) - (p.prefix_space ? 1 : 0);
      for (size_t k = first; k < ids.size(); ++k) {
        int64_t nb = t.token_nbytes[ids[k]];
        auto map = [&](int64_t q) -> size_t {
          q = std::clamp<int64_t>(q, p.b, p.e);
          return n.align[q];
        };
        size_t ob = map(pos), oe = map(pos + nb);
        offs->emplace_back(ob, std::max(ob, oe));
        pos += nb;
      }
    }
  }
}

static std::vector<int32_t> encode_impl(const TokenizerImpl& t, std::string_view text, bool add_special,
                                        std::vector<std::pair<size_t, size_t>>* offs) {
  std::string clean;
  if (!valid_utf8(text)) {
    clean = sanitize_utf8(text);
    text = clean;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (offs) offs->clear();
  if (add_special)
    for (int32_t id : t.post_prefix) {
      ids.push_back(id);
      if (offs) offs->emplace_back(0, 0);
    }
  for (const Segment& sg : split_added(t, text)) {
    if (sg.added_id >= 0) {
      ids.push_back(sg.added_id);
      if (offs) offs->emplace_back(sg.b, sg.e);
    } else {
      encode_segment(t, text, sg.b, sg.e, sg.b == 0, ids, offs);
    }
  }
  if (add_special)
    for (int32_t id : t.post_suffix) {
      ids.push_back(id);
      if (offs) offs->emplace_back(text.size(), text.size());
    }
  return ids;
}

// ------------------------------------------------------------------ decode
static std::string decode_impl(const TokenizerImpl& t, const std::vector<int32_t>& ids, bool skip_special) {
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= t.vocab_size) continue;
    auto it = t.added_by_id.find(id);
    if (it != t.added_by_id.end() && skip_special && t.added[it->second].special) continue;
    toks.push_back(t.token_str(id));
  }
  bool first = true;
  for (const DecStep& d : t.dec) {
    switch (d.kind) {
      case DecKind::ByteLevel: {
        std::string out;
        for (const auto& tk : toks) {
          std::string bytes;
          bool ok = true;
          for (size_t i = 0; i < tk.size() && ok;) {
            int b = unicode_to_byte(decode_cp(tk, i));
            if (b < 0) ok = false;
            else bytes += char(b);
          }
          out += ok ? bytes : tk;
        }
        toks = {sanitize_utf8(out)};
        break;
      }
      case DecKind::Replace:
        for (auto& tk : toks) {
          std::string o;
          for (size_t p = 0; p < tk.size();) {
            if (!d.a.empty() && tk.compare(p, d.a.size(), d.a) == 0) {
              o += d.b;
              p += d.a.size();
            } else {
              o += tk[p++];
            }
          }
          tk = o;
        }
        break;
      case DecKind::ByteFallback: {
        std::vector<std::string> out;
        std::string pend;
        size_t npend = 0;
        auto flush = [&] {
          if (!npend) return;
          if (valid_utf8(pend)) out.push_back(pend);
          else
            for (size_t k = 0; k < npend; ++k) out.push_back("\xEF\xBF\xBD");
          pend.clear();
          npend = 0;
        };
        for (auto& tk : toks) {
          if (tk.size() == 6 && tk.compare(0, 3, "<0x") == 0 && tk[5] == '>' && std::isxdigit((unsigned char)tk[3]) &&
              std::isxdigit((unsigned char)tk[4])) {
            pend += char(std::stoi(tk.substr(3, 2), nullptr, 16));
            ++npend;
          } else {
            flush();
            out.push_back(tk);
          }
        }
        flush();
        toks.swap(out);
        break;
      }
      case DecKind::Fuse: {
        std::string all;
        for (auto& tk : toks) all += tk;
        toks = {all};
        break;
      }
      case DecKind::Strip:
        for (auto& tk : toks) {
          size_t b = 0, e = tk.size();
          for (int k = 0; k < d.start && b < e && tk.compare(b, d.a.size(), d.a) == 0; ++k) b += d.a.size();
          for (int k = 0; k < d.stop && e >= b + d.a.size() && tk.compare(e - d.a.size(), d.a.size(), d.a) == 0; ++k)
            e -= d.a.size();
          tk = tk.substr(b, e - b);
        }
        break;
      case DecKind::Metaspace:
        for (size_t i = 0; i < toks.size(); ++i) {
          std::string o;
          auto& tk = toks[i];
          for (size_t p = 0; p < tk.size();) {
            if (tk.compare(p, d.a.size(), d.a) == 0) {
              o += ' ';
              p += d.a.size();
            } else {
              o += tk[p++];
            }
          }
          if (i == 0 && first && d.prepend_scheme != 0 && !o.empty() && o[0] == ' ') o.erase(0, 1);
          tk = o;
        }
        break;
    }
    first = false;
  }
  std::string out;
  for (auto& tk : toks) out += tk;
  return out;
}

// ------------------------------------------------------------------ public API
Tokenizer::Tokenizer() : impl_(std::make_shared<TokenizerImpl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(const Tokenizer&) = default;
Tokenizer& Tokenizer::operator=(const Tokenizer&) = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer make_tokenizer(std::shared_ptr<const TokenizerImpl> impl) { return Tokenizer(std::move(impl)); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode_impl(*impl_, text, add_special_tokens, nullptr);
}
std::vector<int32_t> Tokenizer::encode_with_offsets(std::string_view text, bool add_special_tokens,
                                                    std::vector<std::pair<size_t, size_t>>* offsets) const {
  return encode_impl(*impl_, text, add_special_tokens, offsets);
}
std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return decode_impl(*impl_, ids, skip_special_tokens);
}
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }
std::optional<int32_t> Tokenizer::unk_id() const {
  return impl_->model.unk >= 0 ? std::optional<int32_t>(impl_->model.unk) : std::nullopt;
}
std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->token_id(token); }
std::string Tokenizer::id_to_token(int32_t id) const { return impl_->token_str(id); }
bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}
bool Tokenizer::is_added(int32_t id) const { return impl_->added_by_id.count(id) > 0; }
const std::string& Tokenizer::chat_template_text() const { return impl_->chat_template; }
const std::string& Tokenizer::source() const { return impl_->source; }
std::vector<std::string> Tokenizer::extra_files() const { return impl_->files; }

PromptCompletion encode_prompt_completion(const Tokenizer& tok, std::string_view prompt, std::string_view completion,
                                          bool add_special_tokens) {
  PromptCompletion pc;
  std::string joint(prompt);
  joint.append(completion);
  pc.ids = tok.encode(joint, add_special_tokens);
  std::vector<int32_t> p = tok.encode(prompt, add_special_tokens);
  // The prompt's own encoding without the suffix template tokens (EOS) that belong at the end.
  if (add_special_tokens) p.resize(p.size() - std::min(p.size(), tok.impl().post_suffix.size()));
  size_t k = 0;
  while (k < p.size() && k < pc.ids.size() && p[k] == pc.ids[k]) ++k;
  pc.prefix_ok = k == p.size();
  pc.boundary = k;
  return pc;
}

}  // namespace prefopt

namespace prefopt {

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {"tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
                                                 "vocab.json",      "merges.txt",            "tokenizer.model",
                                                 "added_tokens.json", "chat_template.jinja", "generation_config.json"};
  return names;
}

void copy_tokenizer_files(const std::string& from, const std::string& to, bool keep_existing) {
  if (from.empty()) return;
  for (const auto& f : tokenizer_file_names()) {
    const std::string p = from + "/" + f, q = to + "/" + f;
    if (!file_exists(p) || std::filesystem::absolute(p) == std::filesystem::absolute(q)) continue;
    if (keep_existing && file_exists(q)) continue;
    atomic_write(q, read_file(p));
  }
}

}  // namespace prefopt
