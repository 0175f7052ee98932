// The tokenizer that GGUF metadata describes, built as transformers (5.x) builds it from the same
// file (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), so that both give the same ids:
//
//   tokenizer.ggml.model "gpt2"   byte-level BPE: tokens (respelled into GPT-2's byte alphabet when a
//                                 token uses other characters) and merges; the pre-tokenizer is chosen
//                                 by tokenizer.ggml.pre (gpt2_pre_tokenizers()).
//   tokenizer.ggml.model "llama"  SentencePiece-style BPE with byte fallback (<0xNN>) and ▁: merges
//                                 from the file, or derived from the vocabulary and scores; the layout
//                                 (normalizer, pre-tokenizer, decoder) by general.architecture: Gemma
//                                 (gemma, gemma2, gemma3), Phi-3, otherwise Llama.
//
// Token types: control tokens (3) become special added tokens, user-defined ones (4) plain added
// tokens, both matched whole before the model runs. bos/eos/unk/pad come from the *_token_id keys;
// tokenizer.ggml.add_bos_token / add_eos_token decide what encode(..., true) adds. Any other
// tokenizer.ggml.model (bert, t5, rwkv, ...) or an unknown tokenizer.ggml.pre is an unsupported_error
// that lists what is supported.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/io/gguf.hpp"
#include "nexus/tokenizer/parts.hpp"

namespace nexus::tok {

/// llama.cpp's token types (tokenizer.ggml.token_type).
enum class gguf_token_type : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6
};

/// A tokenizer.ggml.pre value of a byte-level vocabulary and the split regex transformers puts
/// before the ByteLevel step (none: GPT-2's own ByteLevel regex).
struct gguf_pre_tokenizer {
  std::string_view name;
  const char* split;
};

inline const char* llama3_split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline const char* qwen2_split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline const char* qwen35_split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline const char* tekken_split =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline const char* gpt4o_split =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

/// The tokenizer.ggml.pre values accepted for a "gpt2" vocabulary. The first group keeps GPT-2's
/// ByteLevel regex (transformers' default; for "smollm" llama.cpp also splits digits, which the
/// SmolLM vocabulary never merges, so the ids agree); the others get transformers' split regex.
inline const std::vector<gguf_pre_tokenizer>& gpt2_pre_tokenizers() {
  static const std::vector<gguf_pre_tokenizer> table{{"default", nullptr},
                                                     {"gpt2", nullptr},
                                                     {"gpt-2", nullptr},
                                                     {"smollm", nullptr},
                                                     {"llama3", llama3_split},
                                                     {"llama-v3", llama3_split},
                                                     {"llama-bpe", llama3_split},
                                                     {"falcon3", llama3_split},
                                                     {"falcon-h1", llama3_split},
                                                     {"pixtral", llama3_split},
                                                     {"midm-2.0", llama3_split},
                                                     {"lfm2", llama3_split},
                                                     {"jina-v5-nano", llama3_split},
                                                     {"dbrx", llama3_split},
                                                     {"smaug-bpe", llama3_split},
                                                     {"tekken", tekken_split},
                                                     {"qwen2", qwen2_split},
                                                     {"deepseek-r1-qwen", qwen2_split},
                                                     {"kormo", qwen2_split},
                                                     {"f2llmv2", qwen2_split},
                                                     {"megrez", qwen2_split},
                                                     {"qwen35", qwen35_split},
                                                     {"gpt-4o", gpt4o_split},
                                                     {"llama4", gpt4o_split},
                                                     {"kanana2", gpt4o_split},
                                                     {"talkie", gpt4o_split},
                                                     {"minimax-m2", gpt4o_split}};
  return table;
}

inline std::string gpt2_pre_tokenizer_names() {
  std::string out;
  for (const auto& p : gpt2_pre_tokenizers()) out += (out.empty() ? "" : ", ") + std::string(p.name);
  return out;
}

/// transformers' generate_merges(vocab, scores): every split of every token into two vocabulary
/// tokens, best score first; for one token, the longer left part first. `scores[i]` belongs to
/// `tokens[i]`; as with Python dicts, a repeated token keeps its first position and last score (and
/// its id is its last index). Returns {left, right, merged} ids by rank.
inline std::vector<std::array<std::int32_t, 3>> merges_from_scores(const std::vector<std::string>& tokens,
                                                                   const std::vector<double>& scores) {
  std::unordered_map<std::string_view, std::uint32_t> id;  // token -> last index (the vocabulary's id)
  id.reserve(tokens.size());
  for (std::uint32_t i = 0; i < tokens.size(); ++i) id[tokens[i]] = i;
  struct candidate {
    std::uint32_t merged_id;
    std::uint32_t left_id, right_id, left_len, right_len;  // ids and lengths in code points
    double score;
  };
  std::vector<candidate> out;
  std::unordered_set<std::string_view> done;
  std::vector<std::size_t> cuts;
  for (std::uint32_t i = 0; i < tokens.size(); ++i) {
    const std::string_view t = tokens[i];
    if (!done.insert(t).second) continue;
    const double score = scores[id[t]];
    cuts.clear();
    for (std::size_t b = 0; b < t.size();
         b += std::min(utf8::sequence_length(static_cast<unsigned char>(t[b])), t.size() - b))
      cuts.push_back(b);
    const std::size_t first = out.size();
    for (std::size_t k = 1; k < cuts.size(); ++k) {
      const auto l = id.find(t.substr(0, cuts[k])), r = id.find(t.substr(cuts[k]));
      if (l == id.end() || r == id.end()) continue;
      out.push_back({id[t], l->second, r->second, std::uint32_t(k), std::uint32_t(cuts.size() - k), score});
    }
    std::stable_sort(out.begin() + std::ptrdiff_t(first), out.end(), [](const candidate& a, const candidate& b) {
      return std::pair(a.left_id, a.right_id) < std::pair(b.left_id, b.right_id);
    });
  }
  // sorted(key=(score, len(left), len(right)), reverse=True): stable, descending
  std::stable_sort(out.begin(), out.end(), [](const candidate& a, const candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.left_len != b.left_len) return a.left_len > b.left_len;
    return a.right_len > b.right_len;
  });
  std::vector<std::array<std::int32_t, 3>> merges;
  merges.reserve(out.size());
  for (const auto& c : out)
    merges.push_back({std::int32_t(c.left_id), std::int32_t(c.right_id), std::int32_t(c.merged_id)});
  return merges;
}

/// Python's `not t.strip()`: every character is whitespace (str.isspace).
inline bool all_python_space(std::string_view t) {
  bool all = true;
  utf8::for_each_char(t, [&](std::string_view c) { all = all && utf8::is_python_space(utf8::decode(c)); });
  return all;
}

/// The parts of the tokenizer `f`'s metadata describes (see the top of this file).
inline tokenizer_parts gguf_parts(const gguf::file& f) {
  const std::string& where = f.path();
  const auto model = f.get<std::string>("tokenizer.ggml.model");
  const auto arch = f.get_or<std::string>("general.architecture", "");
  const auto pre = f.get_or<std::string>("tokenizer.ggml.pre", "default");
  if (model != "gpt2" && model != "llama")
    throw unsupported_error(where, "tokenizer.ggml.model '" + model + "' is not supported (supported: gpt2, llama)");

  const auto views = f.at("tokenizer.ggml.tokens").strings();
  const std::size_t n = views.size();
  if (n == 0 || n > std::size_t(std::numeric_limits<std::int32_t>::max()))
    throw config_error(where, "tokenizer.ggml.tokens has " + std::to_string(n) + " entries");
  std::vector<std::string> tokens(views.begin(), views.end());
  for (std::size_t i = 0; i < n; ++i)
    if (!utf8::valid(tokens[i]))
      throw config_error(where, "tokenizer.ggml.tokens[" + std::to_string(i) + "] is not valid UTF-8");
  std::vector<std::int32_t> types;
  if (const auto* v = f.find("tokenizer.ggml.token_type")) {
    types = v->numbers<std::int32_t>();
    if (types.size() != n)
      throw config_error(where, "tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                                    std::to_string(n) + " tokens");
  }
  auto token_id = [&](const char* key) -> std::optional<std::int32_t> {
    const auto* v = f.find(key);
    if (!v) return std::nullopt;
    const auto id = v->as<std::int64_t>();
    if (id < 0 || std::size_t(id) >= n)
      throw config_error(
          where, std::string(key) + " " + std::to_string(id) + " is not a token id (" + std::to_string(n) + " tokens)");
    return std::int32_t(id);
  };
  const auto bos = token_id("tokenizer.ggml.bos_token_id"), eos = token_id("tokenizer.ggml.eos_token_id");
  const auto unk = token_id("tokenizer.ggml.unknown_token_id"), pad = token_id("tokenizer.ggml.padding_token_id");
  // transformers: llama.cpp adds BOS to a SentencePiece vocabulary unless the file says otherwise
  const bool add_bos = f.get_or<bool>("tokenizer.ggml.add_bos_token", model == "llama");
  const bool add_eos = f.get_or<bool>("tokenizer.ggml.add_eos_token", false);

  tokenizer_parts p;
  const bool byte_level = model == "gpt2";
  const bool gemma = !byte_level && (arch == "gemma" || arch == "gemma2" || arch == "gemma3");
  const bool phi3 = !byte_level && arch == "phi3";
  // The special tokens the transformers class behind each layout names by default (GPT2Tokenizer,
  // LlamaTokenizer, GemmaTokenizer): they become special added tokens, with a new id if missing.
  std::vector<std::string> class_tokens;

  if (byte_level) {
    const auto it = std::find_if(gpt2_pre_tokenizers().begin(), gpt2_pre_tokenizers().end(),
                                 [&](const auto& e) { return e.name == pre; });
    if (it == gpt2_pre_tokenizers().end())
      throw unsupported_error(
          where, "tokenizer.ggml.pre '" + pre +
                     "' is not supported for a gpt2 vocabulary (supported: " + gpt2_pre_tokenizer_names() + ")");
    // A token with a character outside the byte alphabet is spelled by its UTF-8 bytes.
    const auto& to_byte = codepoint_to_byte();
    for (auto& t : tokens) {
      bool spelled = true;
      utf8::for_each_char(t, [&](std::string_view c) { spelled = spelled && to_byte.count(utf8::decode(c)); });
      if (spelled) continue;
      std::string respelled;
      for (const unsigned char b : t) utf8::append(respelled, byte_to_codepoint()[b]);
      t = std::move(respelled);
    }
    const auto* merges = f.find("tokenizer.ggml.merges");
    if (!merges) throw config_error(where, "a gpt2 vocabulary needs tokenizer.ggml.merges");
    for (const auto m : merges->strings()) {
      const auto sp = m.find(' ', 1);  // Python's merge.split(" ") must give exactly two parts
      if (sp == std::string_view::npos || m.find(' ', sp + 1) != std::string_view::npos)
        throw config_error(where, "tokenizer.ggml.merges entry '" + std::string(m) + "' is not 'a b'");
      p.merges.emplace_back(std::string(m.substr(0, sp)), std::string(m.substr(sp + 1)));
    }
    if (it->split) {
      pre_tokenizer split;
      split.type = pre_tokenizer::kind::split;
      split.split_behavior = pre_tokenizer::behavior::isolated;
      split.pattern = std::make_shared<unicode_regex>(it->split, where);
      p.pre_tokenizers.push_back(std::move(split));
    }
    pre_tokenizer bl;
    bl.type = pre_tokenizer::kind::byte_level;
    if (!it->split) bl.pattern = std::make_shared<unicode_regex>(gpt2_pattern, where);
    p.pre_tokenizers.push_back(std::move(bl));
    p.decoders.push_back(make_decoder(decoder::kind::byte_level));
    class_tokens = {"<|endoftext|>"};
  } else {
    if (pre != "default")
      throw unsupported_error(
          where, "tokenizer.ggml.pre '" + pre + "' is not supported for a llama vocabulary (supported: default)");
    if (gemma)  // Gemma files store runs of spaces as spaces; the vocabulary spells them with ▁
      for (auto& t : tokens)
        if (t.find(' ') != std::string::npos && all_python_space(t)) {
          std::string runs;
          utf8::for_each_char(t, [&](std::string_view) { runs += "\xE2\x96\x81"; });
          t = std::move(runs);
        }
    if (const auto* merges = f.find("tokenizer.ggml.merges")) {
      for (const auto m : merges->strings()) {
        const auto sp = m.find(' ', 1);
        if (sp == std::string_view::npos || m.find(' ', sp + 1) != std::string_view::npos)
          throw config_error(where, "tokenizer.ggml.merges entry '" + std::string(m) + "' is not 'a b'");
        p.merges.emplace_back(std::string(m.substr(0, sp)), std::string(m.substr(sp + 1)));
      }
    } else {
      std::vector<double> scores(n);
      if (gemma) {  // Gemma's scores do not follow its merge order; the token order does
        for (std::size_t i = 0; i < n; ++i) scores[i] = -double(i);
      } else {
        const auto* s = f.find("tokenizer.ggml.scores");
        if (!s)
          throw config_error(where, "a llama vocabulary without tokenizer.ggml.merges needs tokenizer.ggml.scores");
        const auto values = s->numbers<float>();
        if (values.size() != n)
          throw config_error(where, "tokenizer.ggml.scores has " + std::to_string(values.size()) + " entries for " +
                                        std::to_string(n) + " tokens");
        std::copy(values.begin(), values.end(), scores.begin());
      }
      p.merge_ids = merges_from_scores(tokens, scores);
    }
    p.byte_fallback = true;
    p.fuse_unk = true;
    auto replace_space = [] {
      normalizer r;
      r.type = normalizer::kind::replace;
      r.a = " ";
      r.b = "\xE2\x96\x81";
      return r;
    };
    if (gemma) {
      p.unk_token = "<unk>";  // GemmaTokenizer's unk_token
      class_tokens = {"<bos>", "<eos>", "<unk>", "<pad>", "<mask>"};
      p.normalizers.push_back(replace_space());
      pre_tokenizer split;
      split.type = pre_tokenizer::kind::split;
      split.literal = " ";
      split.split_behavior = pre_tokenizer::behavior::merged_with_previous;
      p.pre_tokenizers.push_back(std::move(split));
    } else if (phi3) {
      normalizer prepend;
      prepend.type = normalizer::kind::prepend;
      prepend.a = "\xE2\x96\x81";
      p.normalizers.push_back(std::move(prepend));
      p.normalizers.push_back(replace_space());
    } else {
      pre_tokenizer meta;
      meta.type = pre_tokenizer::kind::metaspace;
      meta.replacement = "\xE2\x96\x81";
      meta.prepend_scheme = pre_tokenizer::prepend::first;
      meta.split = false;
      p.pre_tokenizers.push_back(std::move(meta));
    }
    if (!gemma) class_tokens = {"<s>", "</s>", "<unk>"};
    p.decoders.push_back(make_decoder(decoder::kind::replace, "\xE2\x96\x81", " "));
    p.decoders.push_back(make_decoder(decoder::kind::byte_fallback));
    p.decoders.push_back(make_decoder(decoder::kind::fuse));
    if (!gemma) {
      auto strip = make_decoder(decoder::kind::strip, " ");
      strip.start = 1;
      p.decoders.push_back(std::move(strip));
    }
  }

  std::unordered_map<std::string_view, std::int32_t> vocab;  // a repeated token: the last id
  vocab.reserve(n);
  for (std::size_t i = 0; i < n; ++i) vocab[tokens[i]] = std::int32_t(i);
  // Added tokens in the order transformers adds them: the class's default special tokens, control
  // tokens (special), user-defined ones (not special), then the special tokens the file names; a
  // name the vocabulary lacks gets the next new id.
  std::unordered_map<std::string, std::int32_t> added;
  std::int32_t next_id = std::int32_t(n);
  auto add = [&](const std::string& content, bool special) {
    if (added.count(content)) return;
    const auto it = vocab.find(content);
    const std::int32_t id = it != vocab.end() ? it->second : next_id++;
    added.emplace(content, id);
    p.added.push_back({content, {}, id, special, false, false, false, false});
  };
  for (const auto& name : class_tokens) add(name, true);
  const auto& to_byte = codepoint_to_byte();
  auto in_byte_alphabet = [&](std::string_view t) {
    bool spelled = true;
    utf8::for_each_char(t, [&](std::string_view c) { spelled = spelled && to_byte.count(utf8::decode(c)); });
    return spelled;
  };
  for (std::size_t i = 0; i < types.size();
       ++i)  // a byte-level control token outside the byte alphabet is a llama.cpp mislabel
    if (types[i] == std::int32_t(gguf_token_type::control) && (!byte_level || in_byte_alphabet(views[i])))
      add(std::string(views[i]), true);
  for (std::size_t i = 0; i < types.size(); ++i)
    if (types[i] == std::int32_t(gguf_token_type::user_defined) && vocab.count(views[i]))
      add(std::string(views[i]), false);
  auto named = [&](std::optional<std::int32_t> id) -> std::optional<std::int32_t> {
    if (!id) return std::nullopt;
    const std::string name(views[std::size_t(*id)]);
    add(name, true);
    return added.at(name);
  };
  p.bos = named(bos);
  p.eos = named(eos);
  p.unk = named(unk);
  p.pad = named(pad);
  // llama.cpp ends generation at eos, eot (end of turn) and eom (end of message)
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (const auto id = named(token_id(key))) p.end_of_generation.push_back(*id);

  // A token spelled like a later one (after respelling) is shadowed, as in a Python dict: its id
  // encodes to nothing and decodes to nothing.
  p.vocab.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (vocab.at(tokens[i]) == std::int32_t(i)) p.vocab.emplace_back(tokens[i], std::int32_t(i));
  if (add_bos && p.bos) p.prefix.push_back(*p.bos);
  if (add_eos && p.eos) p.suffix.push_back(*p.eos);
  return p;
}

}  // namespace nexus::tok
