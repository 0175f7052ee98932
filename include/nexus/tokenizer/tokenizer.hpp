// Hugging Face `tokenizer.json` in C++: added tokens, normalizers, pre-tokenizers, BPE (byte-level
// and SentencePiece-style with byte fallback), post-processing and decoding, with the semantics
// of the `tokenizers` library. A component it does not know fails naming the component.
//
// Byte spans (encode_with_spans): each token gets the byte range [begin, end) of the original text it
// was read from. Every working string carries, per byte, the original offset it came from, through
// added tokens, normalizers (a replaced or NFC-composed character maps to where its source starts),
// pre-tokenizers and BPE (a merged token: its first byte; a `<0xNN>` byte-fallback token: its own
// byte). Rules, so that the non-empty spans of a text tile it exactly ([0, size), no gap, no overlap):
//   * A token begins at the original offset of its first byte that has a source. Its span ends where
//     the next non-empty span begins (the last one ends at the end of the text, the first begins at 0):
//     bytes no token reads (whitespace an lstrip/rstrip added token swallows is read by that token;
//     characters the model drops) belong to the token before them, or to the first token.
//   * A token with no source byte (a prepended ▁ or space alone; bos/eos of the post-processor), or
//     one that begins where the previous non-empty token begins (the later parts of one original
//     character a normalizer turned into several tokens), gets the empty span [p, p) at p = the end
//     of the last non-empty span before it (0 if none): the prefix read once that token is read. So
//     bos is at [0, 0), eos at [size, size).
//   * A text of which no token reads anything (only when the model silently drops every character)
//     has no non-empty span.
#pragma once

#include "nexus/io/model_cache.hpp"
#include "nexus/tokenizer/from_gguf.hpp"
#include "nexus/tokenizer/parts.hpp"

namespace nexus {

namespace gguf {
class file;
}

/// A tokenizer loaded from `tokenizer.json`, or from GGUF metadata (nexus/tokenizer/gguf.hpp).
/// The bytes [begin, end) of the original text a token was read from.
struct byte_span {
  std::size_t begin = 0, end = 0;
  bool operator==(const byte_span&) const = default;
};

/// What encode_with_spans returns: ids and, for each, its byte span.
struct encoding {
  std::vector<std::int32_t> ids;
  std::vector<byte_span> spans;
};

class tokenizer {
 public:
  using added_token = tok::added_token;

  /// Builds a tokenizer from its parts; `where` names the source in errors.
  static tokenizer assemble(tok::tokenizer_parts parts, const std::string& where) {
    tokenizer t;
    t.build(std::move(parts), where);
    return t;
  }

  /// The tokenizer that GGUF metadata describes (its parts: nexus/tokenizer/from_gguf.hpp).
  static tokenizer from_gguf(const gguf::file& file);
  static tokenizer from_gguf(const std::filesystem::path& path);

  /// `dir`: a folder with tokenizer.json (and optionally tokenizer_config.json), the tokenizer.json
  /// file itself, or a `.gguf` file.
  static tokenizer load(const std::filesystem::path& name) {
    namespace fs = std::filesystem;
    const auto dir = resolve_model(name.string());  // a Hugging Face id or cache folder too
    if (!fs::is_directory(dir)) {                   // a GGUF file, by its magic (whatever its name)
      char magic[4] = {};
      std::ifstream probe(dir, std::ios::binary);
      if (probe.read(magic, 4) && std::string_view(magic, 4) == "GGUF") return from_gguf(dir);
    }
    const auto file = fs::is_directory(dir) ? dir / "tokenizer.json" : dir;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw io_error(file.string(), "cannot read tokenizer.json");
    std::stringstream ss;
    ss << in.rdbuf();
    tok::json j;
    try {
      j = tok::json::parse(ss.str());
    } catch (const tok::json::exception& e) {
      throw config_error(file.string(), std::string("invalid JSON: ") + e.what());
    }
    tokenizer t;
    t.build(parse(j, file.string()), file.string());
    const auto config = file.parent_path() / "tokenizer_config.json";
    if (fs::exists(config)) {
      std::ifstream cin(config);
      try {
        const auto c = tok::json::parse(cin);
        auto token_of = [&](const char* key) -> std::optional<std::int32_t> {
          if (!c.contains(key) || c[key].is_null()) return std::nullopt;
          const auto& v = c[key];
          const auto name = v.is_string() ? v.get<std::string>() : v.value("content", "");
          const auto it = t.vocab_.find(name);
          if (it == t.vocab_.end()) return std::nullopt;
          return it->second;
        };
        t.bos_ = token_of("bos_token");
        t.eos_ = token_of("eos_token");
      } catch (const tok::json::exception& e) {
        throw config_error(config.string(), std::string("invalid JSON: ") + e.what());
      }
    }
    t.read_generation_config(file.parent_path() / "generation_config.json");
    return t;
  }

  /// Token ids of `text` (valid UTF-8); with `add_special_tokens`, as the post-processor says.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = false) const {
    if (!utf8::valid(text)) throw usage_error("tokenizer", "input is not valid UTF-8");
    std::vector<std::int32_t> ids;
    encode_into(text, ids, nullptr);
    if (add_special_tokens) {
      std::vector<std::int32_t> out = prefix_;
      out.insert(out.end(), ids.begin(), ids.end());
      out.insert(out.end(), suffix_.begin(), suffix_.end());
      return out;
    }
    return ids;
  }

  /// The ids of encode(text, add_special_tokens) and each token's byte span in `text`, by the rules at
  /// the top of this file: the non-empty spans tile [0, text.size()).
  encoding encode_with_spans(std::string_view text, bool add_special_tokens = false) const {
    if (!utf8::valid(text)) throw usage_error("tokenizer", "input is not valid UTF-8");
    if (text.size() >= tok::inserted)
      throw usage_error(
          "tokenizer", "input of " + std::to_string(text.size()) + " bytes is too long for byte spans (at most 2 GiB)");
    encoding e;
    std::vector<std::uint32_t> starts;
    encode_into(text, e.ids, &starts);
    e.spans = tile(starts, text.size());
    if (add_special_tokens) {
      e.ids.insert(e.ids.begin(), prefix_.begin(), prefix_.end());
      e.spans.insert(e.spans.begin(), prefix_.size(), byte_span{0, 0});
      e.ids.insert(e.ids.end(), suffix_.begin(), suffix_.end());
      e.spans.insert(e.spans.end(), suffix_.size(), byte_span{text.size(), text.size()});
    }
    return e;
  }

  /// The special tokens add_special_tokens puts before and after the text (bos, eos, ...).
  const std::vector<std::int32_t>& prefix_ids() const noexcept { return prefix_; }
  const std::vector<std::int32_t>& suffix_ids() const noexcept { return suffix_; }

  /// Text of `ids` through the decoder chain; invalid UTF-8 becomes U+FFFD as in `tokenizers`.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const {
    return utf8::lossy(decode_bytes(ids, skip_special_tokens));
  }

  /// Decoded bytes before the final UTF-8 check (a stream decoder holds back incomplete tails).
  std::string decode_bytes(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const {
    std::vector<std::string> tokens;
    for (const auto id : ids) {
      if (id < 0 || std::size_t(id) >= id_to_token_.size() || id_to_token_[std::size_t(id)].empty()) {
        if (id >= 0 && std::size_t(id) < id_to_token_.size()) continue;
        throw usage_error("tokenizer", "token id " + std::to_string(id) + " is not in the vocabulary");
      }
      if (skip_special_tokens && special_ids_.count(id)) continue;
      tokens.push_back(id_to_token_[std::size_t(id)]);
    }
    for (const auto& d : decoders_) tokens = d.apply(std::move(tokens));
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i)
      out += (i && decoders_.empty() ? " " : "") + tokens[i];  // no decoder: joined by spaces
    return out;
  }

  std::size_t vocab_size() const noexcept { return id_to_token_.size(); }
  std::optional<std::int32_t> bos() const noexcept { return bos_; }
  std::optional<std::int32_t> eos() const noexcept { return eos_; }
  /// The tokens that end a generated answer: eos, then what the model's own metadata adds
  /// (generation_config.json's eos_token_id, GGUF eot/eom), each once.
  std::vector<std::int32_t> end_of_generation() const {
    std::vector<std::int32_t> out;
    if (eos_) out.push_back(*eos_);
    for (const auto id : end_of_generation_)
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    return out;
  }
  std::optional<std::int32_t> unk() const noexcept { return unk_id_; }
  std::optional<std::int32_t> pad() const noexcept { return pad_; }
  /// The token string of `id` as the vocabulary spells it (byte-level tokens in GPT-2's alphabet).
  const std::string& token_text(std::int32_t id) const {
    if (id < 0 || std::size_t(id) >= id_to_token_.size() || id_to_token_[std::size_t(id)].empty())
      throw usage_error("tokenizer", "token id " + std::to_string(id) + " is not in the vocabulary");
    return id_to_token_[std::size_t(id)];
  }
  bool is_special(std::int32_t id) const { return special_ids_.count(id) != 0; }
  /// The bytes token `id` adds to running text: its spelling through the decoders, alone and away from
  /// the start of the text (no Strip of a leading space, no Metaspace first-token strip), a
  /// byte-fallback `<0xNN>` as its one raw byte. nullopt for an id with no token.
  std::optional<std::string> token_bytes(std::int32_t id) const {
    if (id < 0 || std::size_t(id) >= id_to_token_.size() || id_to_token_[std::size_t(id)].empty()) return std::nullopt;
    std::string s = id_to_token_[std::size_t(id)];
    for (const auto& d : decoders_) {
      switch (d.type) {
        case tok::decoder::kind::strip: break;  // acts on the start of the whole text only
        case tok::decoder::kind::metaspace: s = tok::replace_all(s, d.a, " "); break;
        case tok::decoder::kind::byte_fallback:
          if (s.size() == 6 && s.rfind("<0x", 0) == 0 && s.back() == '>' &&
              std::isxdigit(static_cast<unsigned char>(s[3])) && std::isxdigit(static_cast<unsigned char>(s[4])))
            s = std::string(1, char(std::stoi(s.substr(3, 2), nullptr, 16)));
          break;
        case tok::decoder::kind::byte_level:
        case tok::decoder::kind::replace:
        case tok::decoder::kind::fuse: {
          std::string joined;
          for (const auto& part : d.apply({s})) joined += part;
          s = std::move(joined);
          break;
        }
      }
    }
    return s;
  }

  std::optional<std::int32_t> token_id(const std::string& token) const {
    const auto it = vocab_.find(token);
    return it == vocab_.end() ? std::nullopt : std::optional(it->second);
  }

 private:
  struct split_part {
    std::string text;
    std::int32_t added = -1;  // id when this part is an added token
    bool at_start = false;
    std::size_t begin = 0, end = 0;  // where the part (or the added token with what it strips) lies in the split string
  };

  /// Ids of `text` (valid UTF-8) without the post-processor; with `starts`, also each token's first
  /// source offset (tok::inserted when none). One path for encode and encode_with_spans.
  void encode_into(std::string_view text, std::vector<std::int32_t>& ids, std::vector<std::uint32_t>* starts) const {
    // 1. added tokens matched on the raw text (those not normalized), 2. the rest normalized,
    // 3. added tokens matched on normalized text, 4. pre-tokenize and run the model.
    for (auto& raw : split_added(std::string(text), false, true)) {
      if (raw.added >= 0) {
        ids.push_back(raw.added);
        if (starts) starts->push_back(std::uint32_t(raw.begin));
        continue;
      }
      tok::offsets off;
      if (starts) {
        off.resize(raw.text.size());
        std::iota(off.begin(), off.end(), std::uint32_t(raw.begin));
      }
      const std::string norm = normalize(std::move(raw.text), starts ? &off : nullptr);
      for (auto& part : split_added(norm, true, raw.at_start)) {
        if (part.added >= 0) {
          ids.push_back(part.added);
          if (starts) starts->push_back(tok::first_source(off, part.begin, part.end));
        } else {
          encode_piece({std::move(part.text), part.at_start, tok::slice(off, part.begin, part.end)}, ids, starts);
        }
      }
    }
  }

  /// Spans from the tokens' first source offsets (the rules at the top of this file).
  static std::vector<byte_span> tile(const std::vector<std::uint32_t>& starts, std::size_t size) {
    const std::size_t n = starts.size();
    std::vector<byte_span> spans(n);
    std::vector<bool> reads(n, false);
    std::optional<std::uint32_t> last;
    for (std::size_t k = 0; k < n; ++k)
      if (!(starts[k] & tok::inserted) && (!last || starts[k] > *last)) {
        reads[k] = true;
        spans[k].begin = last ? starts[k] : 0;
        last = starts[k];
      }
    std::size_t next = size;
    for (std::size_t k = n; k-- > 0;)
      if (reads[k]) spans[k].end = next, next = spans[k].begin;
    std::size_t at = 0;
    for (std::size_t k = 0; k < n; ++k)
      if (reads[k]) at = spans[k].end;
      else spans[k] = {at, at};
    return spans;
  }

  /// The parts a tokenizer.json describes.
  static tok::tokenizer_parts parse(const tok::json& j, const std::string& where) {
    tok::tokenizer_parts p;
    const auto& model = j.at("model");
    const auto type = model.value("type", "BPE");
    if (type != "BPE") throw unsupported_error(where, "model '" + type + "' is not supported (supported: BPE)");
    if (!model.value("continuing_subword_prefix", tok::json()).is_null() &&
        !model["continuing_subword_prefix"].get<std::string>().empty())
      throw unsupported_error(where, "BPE continuing_subword_prefix is not supported");
    if (!model.value("end_of_word_suffix", tok::json()).is_null() &&
        !model["end_of_word_suffix"].get<std::string>().empty())
      throw unsupported_error(where, "BPE end_of_word_suffix is not supported");
    if (!model.value("dropout", tok::json()).is_null()) throw unsupported_error(where, "BPE dropout is not supported");
    p.byte_fallback = model.value("byte_fallback", false);
    p.fuse_unk = model.value("fuse_unk", false);
    p.ignore_merges = model.value("ignore_merges", false);
    for (const auto& [token, id] : model.at("vocab").items()) p.vocab.emplace_back(token, id.get<std::int32_t>());
    if (model.contains("unk_token") && !model["unk_token"].is_null())
      p.unk_token = model["unk_token"].get<std::string>();
    for (const auto& m : model.at("merges")) {
      if (m.is_array()) {
        p.merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
      } else {
        const auto s = m.get<std::string>();
        const auto sp = s.find(' ', 1);
        if (sp == std::string::npos) throw config_error(where, "merge '" + s + "' is not 'a b'");
        p.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      }
    }
    for (const auto& t : j.value("added_tokens", tok::json::array()))
      p.added.push_back({t.at("content").get<std::string>(),
                         {},
                         t.at("id").get<std::int32_t>(),
                         t.value("special", false),
                         t.value("single_word", false),
                         t.value("lstrip", false),
                         t.value("rstrip", false),
                         t.value("normalized", !t.value("special", false))});
    tok::parse_normalizer(j.value("normalizer", tok::json()), p.normalizers, where);
    tok::parse_pre_tokenizer(j.value("pre_tokenizer", tok::json()), p.pre_tokenizers, where);
    tok::parse_decoder(j.value("decoder", tok::json()), p.decoders, where);
    parse_post_processor(j.value("post_processor", tok::json()), p, where);
    return p;
  }

  void build(tok::tokenizer_parts p, const std::string& where) {
    byte_fallback_ = p.byte_fallback;
    fuse_unk_ = p.fuse_unk;
    ignore_merges_ = p.ignore_merges;
    vocab_.reserve(p.vocab.size() + p.added.size());
    for (const auto& [token, id] : p.vocab) add_vocab(token, id, where);
    if (p.unk_token)
      if (const auto it = vocab_.find(*p.unk_token); it != vocab_.end()) unk_ = it->second;
    merges_.reserve(p.merges.size() + p.merge_ids.size());
    std::int32_t rank = 0;
    if (!p.merges.empty() && !p.merge_ids.empty()) throw config_error(where, "merges given both as strings and as ids");
    for (const auto& [a, b, ab] : p.merge_ids) {
      for (const auto id : {a, b, ab}) check_id(id, where, "a merge");
      merges_.emplace(pair_key(a, b), std::pair{rank++, ab});
    }
    for (const auto& [a, b] : p.merges) {
      const auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end())
        throw config_error(where, "merge '" + a + " " + b + "' names a token not in the vocabulary");
      merges_.emplace(pair_key(ia->second, ib->second), std::pair{rank++, iab->second});
    }
    normalizers_ = std::move(p.normalizers);
    pre_tokenizers_ = std::move(p.pre_tokenizers);
    decoders_ = std::move(p.decoders);
    added_ = std::move(p.added);
    for (std::size_t i = 0; i < added_.size(); ++i) {
      auto& a = added_[i];
      add_vocab(a.content, a.id, where);
      if (a.special) special_ids_.insert(a.id);
      a.normalized_content = a.normalized ? normalize(a.content) : a.content;
      const std::string& match = a.normalized ? a.normalized_content : a.content;
      if (!match.empty()) added_by_first_byte_[static_cast<unsigned char>(match[0])].push_back(i);
    }
    prefix_ = std::move(p.prefix);
    suffix_ = std::move(p.suffix);
    for (const auto id : prefix_) check_id(id, where, "post-processor");
    for (const auto id : suffix_) check_id(id, where, "post-processor");
    bos_ = p.bos;
    eos_ = p.eos;
    pad_ = p.pad;
    for (const auto id : p.end_of_generation) check_id(id, where, "end of generation");
    end_of_generation_ = std::move(p.end_of_generation);
    if (p.unk) unk_id_ = p.unk;
    else unk_id_ = unk_;
  }

  /// generation_config.json's eos_token_id (a number or a list): the ends transformers' generate() uses.
  void read_generation_config(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path)) return;
    std::ifstream in(path);
    tok::json c;
    try {
      c = tok::json::parse(in);
    } catch (const tok::json::exception& e) {
      throw config_error(path.string(), std::string("invalid JSON: ") + e.what());
    }
    if (!c.is_object() || !c.contains("eos_token_id") || c["eos_token_id"].is_null()) return;
    const auto& v = c["eos_token_id"];
    const auto add = [&](const tok::json& x) {
      if (!x.is_number_integer())
        throw config_error(path.string(), "field 'eos_token_id' must be a token id or a list of them, got " + x.dump());
      const auto id = x.get<std::int64_t>();
      if (id < 0 || std::size_t(id) >= id_to_token_.size())
        throw config_error(path.string(), "field 'eos_token_id' " + std::to_string(id) + " is not a token id (" +
                                              std::to_string(id_to_token_.size()) + " tokens)");
      end_of_generation_.push_back(std::int32_t(id));
    };
    if (v.is_array()) {
      for (const auto& x : v) add(x);
    } else {
      add(v);
    }
  }

  void check_id(std::int32_t id, const std::string& where, const char* what) const {
    if (id < 0 || std::size_t(id) >= id_to_token_.size() || id_to_token_[std::size_t(id)].empty())
      throw config_error(
          where, std::string(what) + " names token id " + std::to_string(id) + ", which is not in the vocabulary");
  }

  static void parse_post_processor(const tok::json& j, tok::tokenizer_parts& p, const std::string& where) {
    if (j.is_null()) return;
    const auto type = j.value("type", "");
    if (type == "Sequence") {
      for (const auto& q : j.at("processors")) parse_post_processor(q, p, where);
    } else if (type == "ByteLevel") {
      // offsets only: ids unchanged
    } else if (type == "TemplateProcessing") {
      bool before = true;
      for (const auto& item : j.at("single")) {
        if (item.contains("Sequence")) {
          before = false;
        } else if (item.contains("SpecialToken")) {
          const auto name = item["SpecialToken"].at("id").get<std::string>();
          const auto& st = j.at("special_tokens").at(name).at("ids");
          for (const auto& id : st) (before ? p.prefix : p.suffix).push_back(id.get<std::int32_t>());
        }
      }
    } else {
      throw unsupported_error(
          where, "post_processor '" + type + "' is not supported (supported: Sequence, ByteLevel, TemplateProcessing)");
    }
  }

  void add_vocab(const std::string& token, std::int32_t id, const std::string& where) {
    if (id < 0) throw config_error(where, "negative id for token '" + token + "'");
    vocab_[token] = id;
    if (std::size_t(id) >= id_to_token_.size()) id_to_token_.resize(std::size_t(id) + 1);
    id_to_token_[std::size_t(id)] = token;
  }

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }

  std::string normalize(std::string s, tok::offsets* off = nullptr) const {
    for (const auto& n : normalizers_) s = n.apply(std::move(s), off);
    return s;
  }

  /// Rust regex's \w: Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
  static bool is_word_char(std::string_view c) {
    const auto cp = utf8::decode(c);
    if (cp == 0x200c || cp == 0x200d) return true;
    switch (int(utf8proc_category(utf8proc_int32_t(cp)))) {  // int: a C enum of 30 categories, most of them "no"
      case UTF8PROC_CATEGORY_LU:
      case UTF8PROC_CATEGORY_LL:
      case UTF8PROC_CATEGORY_LT:
      case UTF8PROC_CATEGORY_LM:
      case UTF8PROC_CATEGORY_LO:
      case UTF8PROC_CATEGORY_NL:
      case UTF8PROC_CATEGORY_MN:
      case UTF8PROC_CATEGORY_MC:
      case UTF8PROC_CATEGORY_ME:
      case UTF8PROC_CATEGORY_ND:
      case UTF8PROC_CATEGORY_PC: return true;
      default: return false;
    }
  }
  /// Rust's char::is_whitespace (the White_Space property).
  static bool is_whitespace(std::uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
  }
  /// Start of the UTF-8 character that ends just before byte `at`.
  static std::size_t previous_char(const std::string& s, std::size_t at) { return utf8::char_start(s, at - 1); }

  /// Splits `s` around the added tokens whose `normalized` flag equals `normalized`: leftmost,
  /// longest match first; lstrip/rstrip swallow neighbouring whitespace; single_word needs
  /// non-word characters around the match.
  std::vector<split_part> split_added(const std::string& s, bool normalized, bool at_start) const {
    std::vector<split_part> out;
    std::size_t from = 0, at = 0;
    while (at < s.size()) {
      const added_token* hit = nullptr;
      std::size_t hit_len = 0;
      for (const auto index : added_by_first_byte_[static_cast<unsigned char>(s[at])]) {
        const auto& a = added_[index];
        if (a.normalized != normalized) continue;
        // A normalized token is matched in its normalized form (Prepend makes "<<SYS>>" "▁<<SYS>>").
        const std::string& content = normalized ? a.normalized_content : a.content;
        if (content.empty() || content.size() <= hit_len || s.compare(at, content.size(), content) != 0) continue;
        if (a.single_word) {
          if (at > 0 && is_word_char(std::string_view(s).substr(previous_char(s, at), at - previous_char(s, at))))
            continue;
          const auto end = at + content.size();
          if (end < s.size() &&
              is_word_char(std::string_view(s).substr(end, utf8::sequence_length(static_cast<unsigned char>(s[end])))))
            continue;
        }
        hit = &a;
        hit_len = content.size();  // longest match at this position
      }
      if (!hit) {
        at += utf8::sequence_length(static_cast<unsigned char>(s[at]));
        continue;
      }
      std::size_t b = at, e = at + hit_len;
      if (hit->lstrip)
        while (b > from) {
          const auto p = previous_char(s, b);
          if (!is_whitespace(utf8::decode(std::string_view(s).substr(p, b - p)))) break;
          b = p;
        }
      if (hit->rstrip)
        while (e < s.size()) {
          const auto n = std::min(utf8::sequence_length(static_cast<unsigned char>(s[e])), s.size() - e);
          if (!is_whitespace(utf8::decode(std::string_view(s).substr(e, n)))) break;
          e += n;
        }
      if (b > from) out.push_back({s.substr(from, b - from), -1, at_start && from == 0, from, b});
      out.push_back({{}, hit->id, false, b, e});
      from = at = e;
    }
    if (from < s.size()) out.push_back({s.substr(from), -1, at_start && from == 0, from, s.size()});
    return out;
  }

  void encode_piece(tok::piece whole, std::vector<std::int32_t>& ids, std::vector<std::uint32_t>* starts) const {
    std::vector<tok::piece> pieces{std::move(whole)};
    for (const auto& p : pre_tokenizers_) {
      std::vector<tok::piece> next;
      for (const auto& piece : pieces)
        for (auto& sub : p.apply(piece)) next.push_back(std::move(sub));
      pieces = std::move(next);
    }
    for (const auto& p : pieces)
      if (!p.text.empty()) bpe(p, ids, starts);
  }

  /// BPE over one pre-tokenized word: characters (or their bytes), then merges by rank. With
  /// `starts`, each token's first source offset (from the byte range of the word it covers).
  void bpe(const tok::piece& word, std::vector<std::int32_t>& ids, std::vector<std::uint32_t>* starts) const {
    const std::string& text = word.text;
    if (starts && word.off.size() != text.size())
      throw std::logic_error("tokenizer: offsets out of step with the text");
    if (ignore_merges_) {
      if (const auto it = vocab_.find(text); it != vocab_.end()) {
        ids.push_back(it->second);
        if (starts) starts->push_back(tok::first_source(word.off, 0, text.size()));
        return;
      }
    }
    std::vector<std::int32_t> sym;
    tok::ranges range;  // with starts: the bytes of `text` each symbol covers
    auto add = [&](std::int32_t id, std::size_t b, std::size_t e) {
      sym.push_back(id);
      if (starts) range.emplace_back(b, e);
    };
    bool last_unk = false;
    utf8::for_each_char(text, [&](std::string_view c) {
      const std::size_t at = std::size_t(c.data() - text.data());
      if (const auto it = vocab_.find(std::string(c)); it != vocab_.end()) {
        add(it->second, at, at + c.size());
        last_unk = false;
        return;
      }
      if (byte_fallback_) {
        std::vector<std::int32_t> bytes;
        for (unsigned char b : c) {
          char name[7];
          std::snprintf(name, sizeof name, "<0x%02X>", b);
          const auto it = vocab_.find(name);
          if (it == vocab_.end()) {
            bytes.clear();
            break;
          }
          bytes.push_back(it->second);
        }
        if (!bytes.empty()) {
          for (std::size_t k = 0; k < bytes.size(); ++k)
            add(bytes[k], at + k, at + k + 1);  // each byte token: its own byte
          last_unk = false;
          return;
        }
      }
      if (!unk_) return;  // no unk token: the character is dropped, as in `tokenizers`
      if (!(fuse_unk_ && last_unk)) add(*unk_, at, at + c.size());
      else if (starts) range.back().second = at + c.size();
      last_unk = true;
    });
    merge(sym, starts ? &range : nullptr);
    ids.insert(ids.end(), sym.begin(), sym.end());
    if (starts)
      for (const auto& [b, e] : range) starts->push_back(tok::first_source(word.off, b, e));
  }

  /// Applies merges to `sym`: always the lowest-ranked adjacent pair, the leftmost among equals
  /// (as `tokenizers` does), with a heap of candidate pairs over a linked list: O(n log n) even
  /// for long words (SentencePiece-style tokenizers see a whole text as one word).
  void merge(std::vector<std::int32_t>& sym, tok::ranges* range = nullptr) const {
    const std::size_t n = sym.size();
    if (n < 2) return;
    std::vector<std::size_t> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (std::size_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1;  // prev[0] wraps: never used
    struct candidate {
      std::int32_t rank;
      std::size_t left;
      std::int32_t a, b;  // the ids the pair had when queued: stale entries are skipped
      bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
    auto queue = [&](std::size_t left) {
      if (left >= n || next[left] >= n) return;
      const auto it = merges_.find(pair_key(sym[left], sym[next[left]]));
      if (it != merges_.end()) heap.push({it->second.first, left, sym[left], sym[next[left]]});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) queue(i);
    while (!heap.empty()) {
      const auto c = heap.top();
      heap.pop();
      const std::size_t right = next[c.left];
      if (!alive[c.left] || right >= n || sym[c.left] != c.a || sym[right] != c.b) continue;
      sym[c.left] = merges_.at(pair_key(c.a, c.b)).second;
      if (range) (*range)[c.left].second = (*range)[right].second;
      alive[right] = false;
      next[c.left] = next[right];
      if (next[right] < n) prev[next[right]] = c.left;
      if (c.left > 0) queue(prev[c.left]);
      queue(c.left);
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (alive[i]) {
        if (range) (*range)[out] = (*range)[i];
        sym[out++] = sym[i];
      }
    sym.resize(out);
    if (range) range->resize(out);
  }

  std::unordered_map<std::string, std::int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_;  // pair -> (rank, merged id)
  std::vector<added_token> added_;
  std::array<std::vector<std::size_t>, 256> added_by_first_byte_;  // candidates for a match at a byte
  std::set<std::int32_t> special_ids_;
  std::vector<tok::normalizer> normalizers_;
  std::vector<tok::pre_tokenizer> pre_tokenizers_;
  std::vector<tok::decoder> decoders_;
  std::vector<std::int32_t> prefix_, suffix_;
  std::vector<std::int32_t> end_of_generation_;
  std::optional<std::int32_t> unk_, bos_, eos_, pad_, unk_id_;  // unk_: the BPE model's unknown token
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
};

}  // namespace nexus

namespace nexus {

inline tokenizer tokenizer::from_gguf(const gguf::file& file) { return assemble(tok::gguf_parts(file), file.path()); }
inline tokenizer tokenizer::from_gguf(const std::filesystem::path& path) { return from_gguf(gguf::file(path)); }

}  // namespace nexus
