// UTF-8 helpers for the tokenizer: code point iteration, encoding, and how many trailing bytes
// of a buffer form an incomplete sequence (streaming decode holds those back).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nexus::utf8 {

/// Length of the sequence a lead byte starts (1 for invalid leads: treated as one unit).
inline std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xe) return 3;
  if ((lead >> 3) == 0x1e) return 4;
  return 1;
}

/// Splits a UTF-8 string into its characters (each a view of 1-4 bytes).
template <class F>
void for_each_char(std::string_view s, F&& f) {
  for (std::size_t i = 0; i < s.size();) {
    const auto n = std::min(sequence_length(static_cast<unsigned char>(s[i])), s.size() - i);
    f(s.substr(i, n));
    i += n;
  }
}

inline std::uint32_t decode(std::string_view c) {
  const auto b = [&](std::size_t i) { return std::uint32_t(static_cast<unsigned char>(c[i])); };
  switch (c.size()) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
    case 3: return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
  }
}

inline void append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

/// Python's str.isspace() for one code point (also what str.strip() removes).
inline bool is_python_space(std::uint32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/// Is `s` valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF)?
inline bool valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    const auto n = sequence_length(lead);
    if (n == 1 && lead >= 0x80) return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    const auto cp = decode(s.substr(i, n));
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n;
  }
  return true;
}

/// Like Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
inline std::string lossy(std::string_view s) {
  if (valid(s)) return std::string(s);
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    const auto n = sequence_length(lead);
    std::size_t ok = 0;  // bytes of a valid prefix of this sequence
    if (n > 1 && !(n == 1 && lead >= 0x80)) {
      ok = 1;
      while (ok < n && i + ok < s.size() && (static_cast<unsigned char>(s[i + ok]) & 0xc0) == 0x80) {
        // second-byte ranges that keep the sequence well-formed (Unicode Table 3-7)
        if (ok == 1) {
          const auto b = static_cast<unsigned char>(s[i + 1]);
          if ((lead == 0xe0 && b < 0xa0) || (lead == 0xed && b > 0x9f) || (lead == 0xf0 && b < 0x90) ||
              (lead == 0xf4 && b > 0x8f) || lead > 0xf4 || lead < 0xc2)
            break;
        }
        ++ok;
      }
    }
    if (n == 1 && lead < 0x80) {
      out += char(lead);
      i += 1;
    } else if (ok == n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += std::max<std::size_t>(ok, 1);
    }
  }
  return out;
}

/// The start of the character that holds byte `at` of `s`: `at` itself unless it is a continuation
/// byte, then the nearest lead before it (0 at most). `at == s.size()` is its own start.
inline std::size_t char_start(std::string_view s, std::size_t at) {
  while (at > 0 && at < s.size() && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80) --at;
  return at;
}

/// Number of bytes at the end of `s` that begin a sequence not yet complete (0..3).
inline std::size_t incomplete_tail(std::string_view s) {
  for (std::size_t back = 1; back <= std::min<std::size_t>(3, s.size()); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xc0) == 0x80) continue;  // continuation: keep looking for the lead
    const auto need = sequence_length(c);
    return (c >= 0xc0 && need > back) ? back : 0;
  }
  return 0;
}

}  // namespace nexus::utf8
