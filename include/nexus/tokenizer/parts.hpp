// The pieces a tokenizer is assembled from — normalizers, pre-tokenizers, decoders, added tokens —
// and tokenizer_parts, the one form that both tokenizer.json and GGUF metadata are read into
// (nexus/tokenizer/tokenizer.hpp assembles it, nexus/tokenizer/from_gguf.hpp reads GGUF into it).
#pragma once

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <stdexcept>
#include <optional>
#include <queue>
#include <sstream>
#include <string>
#include <unordered_map>
#include <set>
#include <span>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/tokenizer/regex.hpp"
#include "nexus/tokenizer/utf8.hpp"

namespace nexus {

namespace tok {

using json = nlohmann::json;

/// GPT-2's reversible byte -> printable code point map.
inline const std::array<std::uint32_t, 256>& byte_to_codepoint() {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

inline const std::unordered_map<std::uint32_t, unsigned char>& codepoint_to_byte() {
  static const auto table = [] {
    std::unordered_map<std::uint32_t, unsigned char> t;
    for (std::uint32_t b = 0; b < 256; ++b) t[byte_to_codepoint()[b]] = static_cast<unsigned char>(b);
    return t;
  }();
  return table;
}

/// Per byte of a working string, the byte offset in the original text it came from; `inserted`
/// marks a byte no original byte produced (a prepended ▁ or space). Empty when spans are not wanted.
using offsets = std::vector<std::uint32_t>;
inline constexpr std::uint32_t inserted = 0x80000000u;

/// The offset of the first byte of [b, e) that has a source, or `inserted`.
inline std::uint32_t first_source(const offsets& off, std::size_t b, std::size_t e) {
  for (std::size_t i = b; i < e; ++i)
    if (!(off[i] & inserted)) return off[i];
  return inserted;
}

inline offsets slice(const offsets& off, std::size_t b, std::size_t e) {
  return off.empty() ? offsets{} : offsets(off.begin() + std::ptrdiff_t(b), off.begin() + std::ptrdiff_t(e));
}

/// Non-overlapping occurrences of `lit` in `s`, left to right.
inline std::vector<std::pair<std::size_t, std::size_t>> find_literal(std::string_view s, std::string_view lit) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (lit.empty()) return out;
  for (std::size_t at = 0, hit; (hit = s.find(lit, at)) != std::string_view::npos; at = hit + lit.size())
    out.emplace_back(hit, hit + lit.size());
  return out;
}

/// `s` with each range of `m` replaced by `to`; with `off` (when tracking), the replacement's bytes
/// come from where the replaced range starts.
inline std::string replace_ranges(const std::string& s, const std::vector<std::pair<std::size_t, std::size_t>>& m,
                                  std::string_view to, offsets* off) {
  std::string out;
  offsets o;
  std::size_t at = 0;
  auto keep = [&](std::size_t b, std::size_t e) {
    out.append(s, b, e - b);
    if (off) o.insert(o.end(), off->begin() + std::ptrdiff_t(b), off->begin() + std::ptrdiff_t(e));
  };
  for (auto [mb, me] : m) {
    keep(at, mb);
    out.append(to);
    if (off) o.insert(o.end(), to.size(), (*off)[mb]);
    at = me;
  }
  keep(at, s.size());
  if (off) *off = std::move(o);
  return out;
}

inline std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  std::size_t at = 0;
  for (std::size_t hit; (hit = s.find(from, at)) != std::string_view::npos; at = hit + from.size())
    out.append(s.substr(at, hit - at)).append(to);
  return out.append(s.substr(at));
}

inline const char* gpt2_pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---- normalizers --------------------------------------------------------------------------------

struct normalizer {
  enum class kind { prepend, replace, nfc, nfd, nfkc, nfkd } type = kind::nfc;
  std::string a, b;                        // prepend: a; replace: a -> b
  std::shared_ptr<unicode_regex> pattern;  // replace with a regex

  /// `s` normalized; with `off`, its offsets are carried along.
  std::string apply(std::string s, offsets* off = nullptr) const {
    switch (type) {
      case kind::prepend:
        if (s.empty()) return s;
        if (off) off->insert(off->begin(), a.size(), (*off)[0] | inserted);
        return a + s;
      case kind::replace: return replace_ranges(s, pattern ? pattern->find_all(s) : find_literal(s, a), b, off);
      case kind::nfc:
      case kind::nfd:
      case kind::nfkc:
      case kind::nfkd: {
        std::string r = unicode_normalize(s);
        if (off && r != s) *off = normalized_offsets(s, *off, r);
        return r;
      }
    }
    return s;
  }

 private:
  std::string unicode_normalize(std::string_view s) const {
    const int opts = type == kind::nfc    ? UTF8PROC_COMPOSE
                     : type == kind::nfd  ? UTF8PROC_DECOMPOSE
                     : type == kind::nfkc ? (UTF8PROC_COMPOSE | UTF8PROC_COMPAT)
                                          : (UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &out,
                                utf8proc_option_t(opts | UTF8PROC_STABLE));
    if (n < 0) return std::string(s);
    std::string r(reinterpret_cast<char*>(out), std::size_t(n));
    std::free(out);
    return r;
  }

  /// Offsets of `r` = normalize(s): normalization works within a grapheme cluster, so each cluster
  /// is normalized alone; an unchanged cluster keeps its bytes' offsets, a changed one maps all its
  /// output to where the cluster starts. If the clusters' results do not concatenate to `r` (never
  /// seen), everything maps to the start of `s`: coarse, but still in order.
  offsets normalized_offsets(const std::string& s, const offsets& off, const std::string& r) const {
    offsets o;
    o.reserve(r.size());
    std::string joined;
    std::size_t cb = 0;
    utf8proc_int32_t prev = -1, state = 0;
    auto flush = [&](std::size_t ce) {
      if (ce == cb) return;
      const std::string_view cluster(s.data() + cb, ce - cb);
      const std::string n = (ce - cb == 1 && static_cast<unsigned char>(s[cb]) < 0x80) ? std::string(cluster)
                                                                                       : unicode_normalize(cluster);
      if (n == cluster) o.insert(o.end(), off.begin() + std::ptrdiff_t(cb), off.begin() + std::ptrdiff_t(ce));
      else o.insert(o.end(), n.size(), first_source(off, cb, ce) & inserted ? off[cb] : first_source(off, cb, ce));
      joined += n;
      cb = ce;
    };
    for (std::size_t i = 0; i < s.size();) {
      const auto len = std::min(utf8::sequence_length(static_cast<unsigned char>(s[i])), s.size() - i);
      const auto cp = utf8proc_int32_t(utf8::decode(std::string_view(s).substr(i, len)));
      if (prev >= 0 && utf8proc_grapheme_break_stateful(prev, cp, &state)) flush(i);
      prev = cp;
      i += len;
    }
    flush(s.size());
    if (joined != r) return offsets(r.size(), off.empty() ? 0 : off[0]);
    return o;
  }
};

inline void parse_normalizer(const json& j, std::vector<normalizer>& out, const std::string& where) {
  if (j.is_null()) return;
  const auto type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& n : j.at("normalizers")) parse_normalizer(n, out, where);
  } else if (type == "Prepend") {
    normalizer n;
    n.type = normalizer::kind::prepend;
    n.a = j.at("prepend").get<std::string>();
    out.push_back(std::move(n));
  } else if (type == "Replace") {
    const auto& p = j.at("pattern");
    normalizer n;
    n.type = normalizer::kind::replace;
    n.b = j.at("content").get<std::string>();
    if (p.contains("String")) n.a = p["String"].get<std::string>();
    else n.pattern = std::make_shared<unicode_regex>(p.at("Regex").get<std::string>(), where);
    out.push_back(std::move(n));
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    normalizer n;
    n.type = type == "NFC"    ? normalizer::kind::nfc
             : type == "NFD"  ? normalizer::kind::nfd
             : type == "NFKC" ? normalizer::kind::nfkc
                              : normalizer::kind::nfkd;
    out.push_back(std::move(n));
  } else {
    throw unsupported_error(
        where,
        "normalizer '" + type + "' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)");
  }
}

// ---- pre-tokenizers -----------------------------------------------------------------------------

/// A piece of text on its way to the model, whether it starts the original text, and (when spans
/// are wanted) the offsets of its bytes.
struct piece {
  std::string text;
  bool at_start = false;
  offsets off;
};

using ranges = std::vector<std::pair<std::size_t, std::size_t>>;

struct pre_tokenizer {
  enum class kind { byte_level, split, metaspace, digits } type = kind::split;
  enum class behavior {
    removed,
    isolated,
    merged_with_previous,
    merged_with_next,
    contiguous
  } split_behavior = behavior::isolated;
  std::shared_ptr<unicode_regex> pattern;  // byte_level (when use_regex) and split
  std::string literal;                     // split on a string pattern
  bool add_prefix_space = false;           // byte_level
  std::string replacement;                 // metaspace
  enum class prepend { always, first, never } prepend_scheme = prepend::always;
  bool split = true;  // metaspace
  bool individual_digits = false;

  ranges matches(const std::string& s) const { return pattern ? pattern->find_all(s) : find_literal(s, literal); }

  /// The parts of `s` (of size `size`) around the matches `m`, as `how` says: each part is a
  /// contiguous range of `s`.
  static ranges split_by(std::size_t size, const ranges& m, behavior how) {
    ranges out;
    std::size_t at = 0;
    std::optional<std::size_t> carry;  // merged_with_next: where the matches waiting for the following text start
    for (auto [b, e] : m) {
      const bool gap = b > at;
      switch (how) {
        case behavior::removed:
          if (gap) out.emplace_back(at, b);
          break;
        case behavior::isolated:
          if (gap) out.emplace_back(at, b);
          out.emplace_back(b, e);
          break;
        case behavior::merged_with_previous:
          if (gap) out.emplace_back(at, e);
          else if (!out.empty() && at != 0) out.back().second = e;
          else out.emplace_back(b, e);
          break;
        case behavior::merged_with_next:
          if (gap) out.emplace_back(carry.value_or(at), b), carry.reset();
          if (!carry) carry = b;
          break;
        case behavior::contiguous:
          if (gap) out.emplace_back(at, b), out.emplace_back(b, e);
          else if (!out.empty() && at != 0) out.back().second = e;
          else out.emplace_back(b, e);
          break;
      }
      at = e;
    }
    const std::size_t rest = how == behavior::merged_with_next ? carry.value_or(at) : at;
    if (rest < size) out.emplace_back(rest, size);
    return out;
  }

  std::vector<piece> apply(const piece& p) const {
    std::vector<piece> out;
    const bool track = !p.off.empty();
    auto emit = [&](const std::string& s, const offsets& off, const ranges& parts) {
      for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto [b, e] = parts[i];
        out.push_back({s.substr(b, e - b), p.at_start && i == 0, slice(off, b, e)});
      }
    };
    switch (type) {
      case kind::byte_level: {
        std::string s = p.text;
        offsets off = p.off;
        if (add_prefix_space && !s.empty() && s[0] != ' ') {
          s.insert(s.begin(), ' ');
          if (track) off.insert(off.begin(), off[0] | inserted);
        }
        const ranges parts =
            pattern ? split_by(s.size(), pattern->find_all(s), behavior::isolated) : ranges{{0, s.size()}};
        for (const auto& [b, e] : parts) {
          piece mapped{{}, p.at_start && out.empty(), {}};
          for (std::size_t i = b; i < e; ++i) {
            const auto before = mapped.text.size();
            utf8::append(mapped.text, byte_to_codepoint()[static_cast<unsigned char>(s[i])]);
            if (track) mapped.off.insert(mapped.off.end(), mapped.text.size() - before, off[i]);
          }
          out.push_back(std::move(mapped));
        }
        break;
      }
      case kind::split: emit(p.text, p.off, split_by(p.text.size(), matches(p.text), split_behavior)); break;
      case kind::metaspace: {
        offsets off = p.off;
        std::string s = replace_ranges(p.text, find_literal(p.text, " "), replacement, track ? &off : nullptr);
        const bool add = prepend_scheme == prepend::always || (prepend_scheme == prepend::first && p.at_start);
        if (add && s.rfind(replacement, 0) != 0) {
          s = replacement + s;
          if (track) off.insert(off.begin(), replacement.size(), off.empty() ? inserted : off[0] | inserted);
        }
        emit(s, off,
             split ? split_by(s.size(), find_literal(s, replacement), behavior::merged_with_next)
                   : ranges{{0, s.size()}});
        break;
      }
      case kind::digits: {
        ranges m;
        for (std::size_t i = 0; i < p.text.size();) {
          if (std::isdigit(static_cast<unsigned char>(p.text[i]))) {
            std::size_t j = i + 1;
            while (!individual_digits && j < p.text.size() && std::isdigit(static_cast<unsigned char>(p.text[j]))) ++j;
            m.emplace_back(i, j);
            i = j;
          } else {
            ++i;
          }
        }
        emit(p.text, p.off, split_by(p.text.size(), m, behavior::isolated));
        break;
      }
    }
    return out;
  }
};

inline void parse_pre_tokenizer(const json& j, std::vector<pre_tokenizer>& out, const std::string& where) {
  if (j.is_null()) return;
  const auto type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : j.at("pretokenizers")) parse_pre_tokenizer(p, out, where);
  } else if (type == "ByteLevel") {
    pre_tokenizer p;
    p.type = pre_tokenizer::kind::byte_level;
    p.add_prefix_space = j.value("add_prefix_space", false);
    if (j.value("use_regex", true)) p.pattern = std::make_shared<unicode_regex>(gpt2_pattern, where);
    out.push_back(std::move(p));
  } else if (type == "Split") {
    pre_tokenizer p;
    p.type = pre_tokenizer::kind::split;
    const auto& pat = j.at("pattern");
    if (pat.contains("String")) p.literal = pat["String"].get<std::string>();
    else p.pattern = std::make_shared<unicode_regex>(pat.at("Regex").get<std::string>(), where);
    const auto b = j.value("behavior", "Isolated");
    using bh = pre_tokenizer::behavior;
    const std::map<std::string, bh> behaviors{{"Removed", bh::removed},
                                              {"Isolated", bh::isolated},
                                              {"MergedWithPrevious", bh::merged_with_previous},
                                              {"MergedWithNext", bh::merged_with_next},
                                              {"Contiguous", bh::contiguous}};
    if (!behaviors.count(b)) throw unsupported_error(where, "Split behavior '" + b + "' is not supported");
    p.split_behavior = behaviors.at(b);
    if (j.value("invert", false)) throw unsupported_error(where, "Split with invert=true is not supported");
    out.push_back(std::move(p));
  } else if (type == "Metaspace") {
    pre_tokenizer p;
    p.type = pre_tokenizer::kind::metaspace;
    p.replacement = j.value("replacement", "\xE2\x96\x81");
    const auto scheme = j.value("prepend_scheme", j.value("add_prefix_space", true) ? "always" : "never");
    p.prepend_scheme = scheme == "first"   ? pre_tokenizer::prepend::first
                       : scheme == "never" ? pre_tokenizer::prepend::never
                                           : pre_tokenizer::prepend::always;
    p.split = j.value("split", true);
    out.push_back(std::move(p));
  } else if (type == "Digits") {
    pre_tokenizer p;
    p.type = pre_tokenizer::kind::digits;
    p.individual_digits = j.value("individual_digits", false);
    out.push_back(std::move(p));
  } else {
    throw unsupported_error(where, "pre_tokenizer '" + type +
                                       "' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits)");
  }
}

// ---- decoders -----------------------------------------------------------------------------------

struct decoder {
  enum class kind { byte_level, replace, byte_fallback, fuse, strip, metaspace } type = kind::fuse;
  std::string a, b;  // replace a -> b; strip: a = content; metaspace: a = replacement
  int start = 0, stop = 0;
  bool prepend = true;  // metaspace: strip the space it prepended to the first token

  /// One step of the decoder chain, on token strings (bytes; not yet validated as UTF-8).
  std::vector<std::string> apply(std::vector<std::string> tokens) const {
    switch (type) {
      case kind::byte_level: {
        std::string bytes;
        for (const auto& t : tokens)
          utf8::for_each_char(t, [&](std::string_view c) {
            const auto it = codepoint_to_byte().find(utf8::decode(c));
            if (it != codepoint_to_byte().end()) bytes += char(it->second);
            else bytes.append(c);
          });
        return {bytes};
      }
      case kind::replace:
        for (auto& t : tokens) t = replace_all(t, a, b);
        return tokens;
      case kind::byte_fallback: {
        std::vector<std::string> out;
        std::string pending;
        std::size_t pending_count = 0;
        auto flush = [&] {
          if (!pending_count) return;
          if (utf8::valid(pending)) out.push_back(pending);
          else
            for (std::size_t i = 0; i < pending_count; ++i) out.push_back("\xEF\xBF\xBD");
          pending.clear();
          pending_count = 0;
        };
        for (auto& t : tokens) {
          if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t.back() == '>' &&
              std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4]))) {
            pending += char(std::stoi(t.substr(3, 2), nullptr, 16));
            ++pending_count;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        return out;
      }
      case kind::fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        return {all};
      }
      case kind::strip:
        for (auto& t : tokens) {
          for (int i = 0; i < start && t.rfind(a, 0) == 0; ++i) t.erase(0, a.size());
          for (int i = 0; i < stop && t.size() >= a.size() && t.compare(t.size() - a.size(), a.size(), a) == 0; ++i)
            t.erase(t.size() - a.size());
        }
        return tokens;
      case kind::metaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = replace_all(tokens[i], a, " ");
          if (i == 0 && prepend && !tokens[i].empty() && tokens[i][0] == ' ') tokens[i].erase(0, 1);
        }
        return tokens;
    }
    return tokens;
  }
};

inline decoder make_decoder(decoder::kind k, std::string a = {}, std::string b = {}) {
  decoder d;
  d.type = k;
  d.a = std::move(a);
  d.b = std::move(b);
  return d;
}

inline void parse_decoder(const json& j, std::vector<decoder>& out, const std::string& where) {
  if (j.is_null()) return;
  const auto type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& d : j.at("decoders")) parse_decoder(d, out, where);
  } else if (type == "ByteLevel") {
    out.push_back(make_decoder(decoder::kind::byte_level));
  } else if (type == "Replace") {
    const auto& p = j.at("pattern");
    if (!p.contains("String")) throw unsupported_error(where, "Replace decoder with a regex pattern is not supported");
    out.push_back(
        make_decoder(decoder::kind::replace, p["String"].get<std::string>(), j.at("content").get<std::string>()));
  } else if (type == "ByteFallback") {
    out.push_back(make_decoder(decoder::kind::byte_fallback));
  } else if (type == "Fuse") {
    out.push_back(make_decoder(decoder::kind::fuse));
  } else if (type == "Strip") {
    auto d = make_decoder(decoder::kind::strip, j.value("content", " "));
    d.start = j.value("start", 0);
    d.stop = j.value("stop", 0);
    out.push_back(std::move(d));
  } else if (type == "Metaspace") {
    auto d = make_decoder(decoder::kind::metaspace, j.value("replacement", "\xE2\x96\x81"));
    d.prepend = j.value("prepend_scheme", j.value("add_prefix_space", true) ? "always" : "never") != "never";
    out.push_back(std::move(d));
  } else {
    throw unsupported_error(
        where,
        "decoder '" + type +
            "' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)");
  }
}

struct added_token {
  std::string content;
  std::string normalized_content;  // content after the normalizer (for normalized tokens; filled by assemble)
  std::int32_t id = 0;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

/// Everything a tokenizer is made of, as plain data: what a tokenizer.json describes, and what
/// tokenizer/gguf.hpp builds from GGUF metadata. tokenizer::assemble turns it into a tokenizer, so
/// both sources share one encoder and one decoder.
struct tokenizer_parts {
  // BPE model
  std::vector<std::pair<std::string, std::int32_t>> vocab;  // a later entry for the same token wins
  std::vector<std::pair<std::string, std::string>> merges;  // by rank; a, b and a+b must be in the vocabulary
  std::vector<std::array<std::int32_t, 3>> merge_ids;       // or by id: {a, b, a+b}, by rank (when merges is empty)
  std::optional<std::string> unk_token;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  // pipeline
  std::vector<added_token> added;  // also vocabulary entries
  std::vector<normalizer> normalizers;
  std::vector<pre_tokenizer> pre_tokenizers;
  std::vector<decoder> decoders;
  std::vector<std::int32_t> prefix, suffix;  // what the post-processor puts around a sequence
  std::optional<std::int32_t> bos, eos, unk, pad;
  std::vector<std::int32_t> end_of_generation;  // besides eos: GGUF eot/eom, generation_config.json eos_token_id
};

}  // namespace tok

}  // namespace nexus
