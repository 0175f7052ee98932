// What a byte-level view of a tokenised teacher needs from its tokenizer alone (no model): the
// outcomes of a next-byte distribution, the root context every text starts from, the ordinary tokens
// sorted by their bytes (byte_vocabulary), and the validity rule of a base (a token sequence whose
// bytes are a prefix of the text) with the offset at which it is decided. byte_level.hpp shows
// how they are used; docs/fusion.md, "Byte-level distributions", has the definitions in full:
//
// * The token stream of a text x spells π·x, where π is what the tokenizer puts before any text
//   (a `▁` for Llama-style vocabularies, nothing for GPT-2 and Gemma ones). A token's bytes are its
//   spelling through the decoders (tokenizer::token_bytes): byte-level characters mapped back,
//   `▁` as a space, `<0xNN>` as its byte. Special tokens spell nothing: the root context (bos) comes
//   before everything, eos is the end-of-text outcome, any other special token is excluded.
// * A base is a token sequence (after the root) whose bytes are a prefix of π·x. Every prefix of a
//   base must be valid when the text decides it: a prefix ending at text offset e is decided once
//   the character containing byte e is complete (at f), and is valid if it is the tokenizer's own
//   encoding of x[0, e), or a prefix of the encoding of x[0, f) (pre-tokenizers look one character
//   ahead: "a\n\nb" reads "\n" "\n" where "a\n\n" reads "\n\n"). The canonical tokenization of a
//   text is valid under this rule wherever BPE is stable under removing its last token and the
//   pre-tokenizer looks at most one character ahead; both hold for every tokenizer kind supported.
// * A cover of a byte prefix y is a base b ending before the end of y and one ordinary token v
//   whose bytes continue b to at least the end of y. P(y) = Σ over covers of P(b) P(v | b), and
//   P(c | y) = P(y·c) / Z with Z = Σ_c P(y·c) + P(end): normalised over the 256 bytes and the end of
//   text exactly. P(end | y) comes from the one base equal to encode(y): P(encode(y)) P(eos | ...).
// * Since a cover of y·c is a cover of y or extends one ending exactly at |y|, Z ≤ P(y), and the
//   byte-level log-likelihood of a text is at least log P(y_n) ≥ the canonical tokenization's (one
//   of the covers), with or without the end of text.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace nexus::fusion {

/// The outcomes of a next-byte distribution: bytes 0..255, then the end of the text.
inline constexpr std::size_t end_of_text = 256;
using byte_distribution = std::array<double, 257>;

/// The tokens every text starts from: the tokenizer's own prefix, else bos, else eos (GPT-2's
/// convention: <|endoftext|> starts a document).
inline std::vector<std::int32_t> root_context(const tokenizer& tok, std::int64_t model_vocab) {
  auto root = tok.prefix_ids();
  if (root.empty() && tok.bos()) root = {*tok.bos()};
  if (root.empty() && tok.eos()) root = {*tok.eos()};
  if (root.empty()) throw unsupported_error("byte_level", "the tokenizer has no bos or eos to start a text with");
  for (const auto id : root)
    if (id < 0 || id >= model_vocab)
      throw usage_error("byte_level", "root token " + std::to_string(id) + " outside the model");
  return root;
}

/// The ordinary tokens of a tokenizer (those a model of `model_vocab` ids can emit) by their bytes,
/// sorted, plus what a byte-level view needs around them: π, the root context, the end token.
class byte_vocabulary {
 public:
  byte_vocabulary(const tokenizer& tok, std::int64_t model_vocab, std::optional<std::int32_t> end_token = {}) {
    const auto n = std::min<std::int64_t>(std::int64_t(tok.vocab_size()), model_vocab);
    bytes_.resize(std::size_t(n));
    for (std::int32_t id = 0; id < std::int32_t(n); ++id) {
      if (tok.is_special(id) || (tok.unk() && *tok.unk() == id)) continue;
      auto b = tok.token_bytes(id);
      if (!b || b->empty()) continue;
      bytes_[std::size_t(id)] = std::move(*b);
      sorted_.push_back(id);
      max_bytes_ = std::max(max_bytes_, bytes_[std::size_t(id)].size());
    }
    std::stable_sort(sorted_.begin(), sorted_.end(), [&](auto a, auto b) { return bytes_[a] < bytes_[b]; });
    for (std::size_t c = 0, k = 0; c <= 256; ++c) {
      while (k < sorted_.size() && static_cast<unsigned char>(bytes_[std::size_t(sorted_[k])][0]) < c) ++k;
      first_start_[c] = c == 256 ? sorted_.size() : k;
    }
    if (sorted_.empty()) throw usage_error("byte_level", "the tokenizer has no ordinary token with bytes");
    // π: what the token stream spells before the text ("a" is encoded as π·"a").
    std::string a;
    for (const auto id : tok.encode("a")) a += token_bytes_or_throw(tok, id, "a");
    if (a.empty() || a.back() != 'a')
      throw unsupported_error("byte_level", "the tokenizer does not spell \"a\" as its own byte");
    prefix_ = a.substr(0, a.size() - 1);
    root_ = root_context(tok, model_vocab);
    end_ = end_token ? end_token : tok.eos();
    if (end_ && (*end_ < 0 || *end_ >= model_vocab))
      throw usage_error("byte_level", "end token " + std::to_string(*end_) + " outside the model");
  }

  /// Bytes of an ordinary token (empty for others).
  const std::string& bytes(std::int32_t id) const { return bytes_[std::size_t(id)]; }
  /// Ordinary token ids sorted by their bytes.
  const std::vector<std::int32_t>& sorted() const noexcept { return sorted_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }
  /// Where the tokens starting with byte c begin in sorted() (c = 256: its end).
  std::size_t first_byte_start(std::size_t c) const { return first_start_.at(c); }
  const std::string& prefix() const noexcept { return prefix_; }
  const std::vector<std::int32_t>& root() const noexcept { return root_; }
  std::optional<std::int32_t> end_token() const noexcept { return end_; }

  /// The sub-range of sorted()[lo, hi) — tokens sharing their first `depth` bytes — whose byte at
  /// `depth` is `c`.
  std::pair<std::size_t, std::size_t> narrow(std::size_t lo, std::size_t hi, std::size_t depth, unsigned char c) const {
    auto key = [&](std::size_t k) -> int {
      const auto& b = bytes_[std::size_t(sorted_[k])];
      return b.size() > depth ? int(static_cast<unsigned char>(b[depth])) : -1;
    };
    std::size_t a = lo, z = hi;
    while (a < z) {  // first with key >= c
      const auto m = (a + z) / 2;
      if (key(m) < int(c)) a = m + 1;
      else z = m;
    }
    std::size_t b = a;
    z = hi;
    while (b < z) {  // first with key > c
      const auto m = (b + z) / 2;
      if (key(m) <= int(c)) b = m + 1;
      else z = m;
    }
    return {a, b};
  }

  /// The bytes the token stream of `ids` spells; throws if one of them is not an ordinary token.
  std::string spell(std::span<const std::int32_t> ids, std::string_view text) const {
    std::string s;
    for (const auto id : ids) {
      if (id < 0 || std::size_t(id) >= bytes_.size() || bytes_[std::size_t(id)].empty())
        throw usage_error("byte_level", "the text's tokenization contains token " + std::to_string(id) +
                                            ", which spells no bytes (a special or unknown token) — text: " +
                                            std::string(text.substr(0, 40)));
      s += bytes_[std::size_t(id)];
    }
    return s;
  }

 private:
  static std::string token_bytes_or_throw(const tokenizer& tok, std::int32_t id, const char* what) {
    auto b = tok.token_bytes(id);
    if (!b) throw unsupported_error("byte_level", std::string("no bytes for the token of \"") + what + "\"");
    return *b;
  }

  std::vector<std::string> bytes_;
  std::vector<std::int32_t> sorted_;
  std::array<std::size_t, 257> first_start_{};
  std::size_t max_bytes_ = 0;
  std::string prefix_;
  std::vector<std::int32_t> root_;
  std::optional<std::int32_t> end_;
};

/// "0x41" for byte 0x41 (for messages).
inline std::string hex_byte(unsigned char c) {
  const char* d = "0123456789ABCDEF";
  return {'0', 'x', d[c >> 4], d[c & 15]};
}

/// Whether `s` is the start of some valid UTF-8 text (complete characters, then at most one
/// incomplete one that can still be completed).
inline bool utf8_valid_prefix(std::string_view s) {
  const auto tail = utf8::incomplete_tail(s);
  if (!tail) return utf8::valid(s);
  const auto lead = static_cast<unsigned char>(s[s.size() - tail]);
  const auto need = utf8::sequence_length(lead);
  for (const unsigned char pad : {0x80, 0x90, 0xa0}) {  // the second-byte ranges of Unicode Table 3-7
    std::string t(s.substr(s.size() - tail));
    t.append(need - tail, char(pad));
    if (utf8::valid(t)) return utf8::valid(s.substr(0, s.size() - tail));
  }
  return false;
}

/// The validity rule of a base prefix (the comment at the top): `toks` (after the root) ends at
/// offset `e` of `text` (inside π when `in_prefix`), decided with text[0, f). `encode(k)` gives the
/// tokenizer's ids of text[0, k).
template <class Encode>
bool valid_base_prefix(std::span<const std::int32_t> toks, std::string_view text, std::size_t e, bool in_prefix,
                       std::size_t f, Encode&& encode) {
  const std::vector<std::int32_t>& ahead = encode(f);
  if (ahead.size() >= toks.size() && std::equal(toks.begin(), toks.end(), ahead.begin())) return true;
  const bool boundary = !in_prefix && e > 0 && e <= text.size() &&
                        (e == text.size() || (static_cast<unsigned char>(text[e]) & 0xc0) != 0x80);
  if (!boundary) return false;
  const std::vector<std::int32_t>& here = encode(e);
  return here.size() == toks.size() && std::equal(toks.begin(), toks.end(), here.begin());
}

/// The offset at which the validity of a base ending at text offset `e` is decided: the end of the
/// character that contains byte `e`; nullopt while that is not known from `text`.
inline std::optional<std::size_t> decision_offset(std::string_view text, std::size_t e) {
  if (e >= text.size()) return std::nullopt;
  const auto s = utf8::char_start(text, e);
  const auto f = s + utf8::sequence_length(static_cast<unsigned char>(text[s]));
  if (f > text.size()) return std::nullopt;
  return f;
}

}  // namespace nexus::fusion
