// Byte-level distributions of a tokenised teacher (nexus/fusion/bytes/byte_level.hpp): normalised at every
// position, a log-likelihood never below the canonical tokenization's, and equal to a brute-force
// reference that enumerates every admitted tokenization and runs the model on each from scratch.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bytes/score.hpp"
#include "nexus/io/model_cache.hpp"
#include "nexus/registry/open.hpp"
#include "reference.hpp"
#include "widened_llama.hpp"

using namespace nexus;

namespace {

struct teacher {
  std::string name;
  std::unique_ptr<model> m;
  tokenizer tok;
};

std::vector<teacher> teachers() {
  std::vector<teacher> out;
  const auto d = test::data_dir();
  auto add = [&](const std::string& name, std::unique_ptr<model> m, tokenizer tok) {
    out.push_back({name, std::move(m), std::move(tok)});
  };
  // tokenizer.json: SentencePiece-style with byte fallback (no prefix; ▁ prefix), byte-level BPE
  for (const auto* kind : {"gemma", "mistral_metaspace", "gpt2", "llama3"}) {
    auto tok = tokenizer::load(d / "tokenizers" / kind);
    auto m = test::widened_llama(std::int64_t(tok.vocab_size()), 7);
    add(std::string("tokenizer.json ") + kind, std::move(m), std::move(tok));
  }
  // GGUF vocabularies: byte fallback (llama) and byte-level (gpt2)
  for (const auto* kind : {"syn_llama", "syn_gpt2"}) {
    auto tok = tokenizer::load(d / "gguf_tokenizers" / kind / "tokenizer.gguf");
    auto m = test::widened_llama(std::int64_t(tok.vocab_size()), 11);
    add(std::string("gguf ") + kind, std::move(m), std::move(tok));
  }
  // a fixture model with its own tokenizer, from its folder and from its GGUF file
  add("models/llama", load_cpu_model(d / "models" / "llama", {.threads = 1}), tokenizer::load(d / "models" / "llama"));
  add("gguf_models/llama.gguf", load_cpu_model(d / "gguf_models" / "llama.gguf", {.threads = 1}),
      tokenizer::load(d / "gguf_models" / "llama.gguf"));
  return out;
}

/// log P of every next token after root + ids[0..k) for each k, run one token at a time on a fresh
/// cache (as the byte-level teacher runs each token), plus the last distribution.
struct run_result {
  double logp = 0;           // log P(ids | root)
  std::vector<double> last;  // log-softmax after the last id
};

run_result run_fresh(const model& m, const std::vector<std::int32_t>& root, const std::vector<std::int32_t>& ids) {
  std::vector<std::int32_t> all = root;
  all.insert(all.end(), ids.begin(), ids.end());
  auto cache = m.new_cache(std::int64_t(all.size()) + 1);
  run_result r;
  std::vector<double> lp;
  for (std::size_t p = 0; p < all.size(); ++p) {
    if (p >= root.size()) r.logp += lp.at(std::size_t(all[p]));
    const auto out = m.forward(std::span(&all[p], 1), cache, {.all_logits = false, .chunk_rows = 1});
    const auto& row = out.logits.data;
    const float top = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (const float x : row) sum += std::exp(double(x) - double(top));
    const double log_z = double(top) + std::log(sum);
    lp.resize(row.size());
    for (std::size_t i = 0; i < row.size(); ++i) lp[i] = double(row[i]) - log_z;
  }
  r.last = lp;
  return r;
}

/// The definition, by brute force: every token sequence whose bytes are a prefix of π·y and whose
/// prefixes pass the validity rule the text y decides, each run from scratch; the covers' masses
/// summed per next byte and the end of text, normalised.
fusion::byte_distribution brute_force(const model& m, const tokenizer& tok, const std::string& y) {
  const fusion::byte_vocabulary v(tok, m.arch().dims.vocab_size);
  const std::string S = v.prefix() + y;
  const auto pi = v.prefix().size();
  std::vector<std::int32_t> ordinary;
  for (std::int32_t id = 0;
       id < std::int32_t(std::min<std::int64_t>(std::int64_t(tok.vocab_size()), m.arch().dims.vocab_size)); ++id)
    if (!v.bytes(id).empty()) ordinary.push_back(id);
  auto encode = [&](std::size_t k) { return tok.encode(std::string_view(y).substr(0, k)); };
  std::vector<std::pair<std::vector<std::int32_t>, std::size_t>> bases;  // tokens, end in S
  std::function<void(std::vector<std::int32_t>&, std::size_t)> dfs = [&](std::vector<std::int32_t>& t, std::size_t at) {
    bases.emplace_back(t, at);
    for (const auto id : ordinary) {
      const auto& b = v.bytes(id);
      if (at + b.size() > S.size() || S.compare(at, b.size(), b) != 0) continue;
      t.push_back(id);
      const auto end = at + b.size();
      const bool in_prefix = end < pi;
      const std::size_t e = in_prefix ? 0 : end - pi;
      const auto f = fusion::decision_offset(y, e);
      std::vector<std::int32_t> enc_cache;
      const bool ok = !f || fusion::valid_base_prefix(std::span<const std::int32_t>(t), y, e, in_prefix, *f,
                                                      [&](std::size_t k) -> const std::vector<std::int32_t>& {
                                                        enc_cache = encode(k);
                                                        return enc_cache;
                                                      });
      if (ok) dfs(t, end);
      t.pop_back();
    }
  };
  std::vector<std::int32_t> start;
  dfs(start, 0);
  std::vector<double> logw;
  std::vector<std::array<double, 257>> parts;
  for (const auto& [t, at] : bases) {
    const auto r = run_fresh(m, v.root(), t);
    std::array<double, 257> part{};
    const auto depth = S.size() - at;
    for (const auto id : ordinary) {
      const auto& b = v.bytes(id);
      if (b.size() <= depth || S.compare(at, depth, b, 0, depth) != 0) continue;
      part[static_cast<unsigned char>(b[depth])] += std::exp(r.last[std::size_t(id)]);
    }
    if (depth == 0 && S.size() >= pi && utf8::valid(y) && v.end_token() && t == tok.encode(y))
      part[fusion::end_of_text] += std::exp(r.last[std::size_t(*v.end_token())]);
    logw.push_back(r.logp);
    parts.push_back(part);
  }
  const double ref = *std::max_element(logw.begin(), logw.end());
  fusion::byte_distribution d{};
  for (std::size_t i = 0; i < parts.size(); ++i)
    for (std::size_t c = 0; c < 257; ++c) d[c] += std::exp(logw[i] - ref) * parts[i][c];
  double z = 0;
  for (const auto x : d) z += x;
  for (auto& x : d) x /= z;
  return d;
}

/// Canonical log-likelihood, computed here from one forward pass over root + encode(text) (+ end).
double canonical(const model& m, const tokenizer& tok, const std::string& text, bool with_end) {
  const fusion::byte_vocabulary v(tok, m.arch().dims.vocab_size);
  std::vector<std::int32_t> ids = v.root();
  const auto enc = tok.encode(text);
  ids.insert(ids.end(), enc.begin(), enc.end());
  if (with_end) ids.push_back(*v.end_token());
  auto cache = m.new_cache(std::int64_t(ids.size()));
  const auto out = m.forward(ids, cache, {.taps = {.layers = {}, .distribution = true}});
  double ll = 0;
  const auto V = out.taps.logprobs.shape.at(1);
  for (std::size_t p = v.root().size(); p < ids.size(); ++p)
    ll += double(out.taps.logprobs.data[(p - 1) * std::size_t(V) + std::size_t(ids[p])]);
  return ll;
}

/// Whether the teacher's tokenizer spells `text` byte for byte (tiny fixture vocabularies drop or unk
/// what they cannot spell; a Metaspace prefix is not added before a leading space).
bool spells(const teacher& t, const std::string& text) {
  const fusion::byte_vocabulary v(t.tok, t.m->arch().dims.vocab_size);
  try {
    return v.spell(t.tok.encode(text), text) == v.prefix() + text;
  } catch (const usage_error&) {
    return false;
  }
}

const std::vector<std::string> short_texts = {"Hi", "a b", "ab\n\nc", " x1", "h\xC3\xA9!", "\xE4\xB8\xAD", "é€"};
const std::vector<std::string> texts = {"Hello world, this is a test.", "The  quick\n\nbrown fox: 12345 jumps.",
                                        "caf\xC3\xA9 na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87",
                                        "  leading spaces\tand tabs", "emoji \xF0\x9F\x98\x80 and \xE2\x82\xAC 5"};

}  // namespace

TEST_CASE("byte-level distributions are normalised over 256 bytes and the end of text at every position") {
  for (auto& t : teachers()) {
    INFO(t.name);
    for (const auto& text : texts) {
      INFO(text);
      if (!spells(t, text)) {
        CHECK_THROWS_WITH(fusion::score_bytes(*t.m, t.tok, text, false), Catch::Contains("byte for byte"));
        continue;
      }
      fusion::byte_level_teacher b(*t.m, t.tok);
      for (std::size_t i = 0; i <= text.size(); ++i) {
        double sum = 0;
        for (const auto p : b.distribution()) {
          REQUIRE(p >= 0);
          sum += p;
        }
        REQUIRE(std::abs(sum - 1) < 1e-6);
        if (i < text.size()) {
          REQUIRE(b.distribution()[static_cast<unsigned char>(text[i])] > 0);
          b.push(static_cast<unsigned char>(text[i]));
        }
      }
    }
  }
}

TEST_CASE("byte-level log-likelihood is never below the canonical tokenization's") {
  for (auto& t : teachers()) {
    INFO(t.name);
    for (const auto& text : texts) {
      INFO(text);
      if (!spells(t, text)) continue;
      for (const bool with_end : {false, true}) {
        const auto s = fusion::score_bytes(*t.m, t.tok, text, with_end);
        const double c = canonical(*t.m, t.tok, text, with_end);
        INFO("byte-level " << s.log_likelihood << " canonical " << c);
        CHECK(s.log_likelihood >= c - 1e-6 * std::abs(c));
        // the library's canonical log-likelihood is the same quantity
        CHECK(std::abs(fusion::canonical_log_likelihood(*t.m, t.tok, text, with_end) - c) < 1e-4 * std::abs(c));
        // the marginal is at least the canonical path, but a random teacher is far from canonical-only
        CHECK(s.stats.max_live >= 1);
      }
    }
  }
}

TEST_CASE("byte-level distributions equal the brute-force sum over every admitted tokenization") {
  for (auto& t : teachers()) {
    INFO(t.name);
    for (const auto& text : short_texts) {
      INFO(text);
      if (!spells(t, text)) continue;
      fusion::byte_level_teacher b(*t.m, t.tok);
      for (std::size_t i = 0; i <= text.size(); ++i) {
        const auto y = text.substr(0, i);
        INFO("prefix of " << i << " bytes");
        const auto ref = brute_force(*t.m, t.tok, y);
        const auto& got = b.distribution();
        for (std::size_t c = 0; c < 257; ++c) {
          INFO("outcome " << c << ": " << got[c] << " vs " << ref[c]);
          REQUIRE(std::abs(got[c] - ref[c]) <= 1e-9 * std::max(std::abs(ref[c]), 1e-300));
        }
        if (i < text.size()) b.push(static_cast<unsigned char>(text[i]));
      }
    }
  }
}

TEST_CASE("byte-level marginal differs from the canonical path where tokenizations compete") {
  // On a random teacher the other tokenizations carry visible mass: the byte-level log-likelihood is
  // strictly above the canonical one (the two would be equal if the marginal ignored them).
  auto tok = tokenizer::load(test::data_dir() / "tokenizers" / "gemma");
  const auto m = test::widened_llama(std::int64_t(tok.vocab_size()), 3);
  const std::string text = "Hello world, this is a test.";
  const auto s = fusion::score_bytes(*m, tok, text, true);
  CHECK(s.log_likelihood > canonical(*m, tok, text, true) + 0.01);
}

TEST_CASE("byte-level input errors are typed") {
  const auto d = test::data_dir();
  auto tok = tokenizer::load(d / "tokenizers" / "gemma");
  const auto m = test::widened_llama(std::int64_t(tok.vocab_size()), 5);
  CHECK_THROWS_AS(fusion::score_bytes(*m, tok, "", false), usage_error);
  CHECK_THROWS_AS(fusion::score_bytes(*m, tok, "ab\xFF", false), usage_error);
  CHECK_THROWS_AS(fusion::score_bytes(*m, tok, "\xE4\xB8", false), usage_error);  // a truncated character
  fusion::byte_level_teacher b(*m, tok);
  b.push(0xE4);
  CHECK_THROWS_WITH(b.push('a'), Catch::Contains("invalid UTF-8"));
  CHECK(b.text() == "\xE4");  // the rejected byte is not kept
  CHECK_THROWS_AS(b.push(0xC0), usage_error);
  // a tokenizer whose normalizer changes the text (NFC) cannot spell it byte for byte
  auto qwen = tokenizer::load(d / "tokenizers" / "qwen2");
  const auto mq = test::widened_llama(std::int64_t(qwen.vocab_size()), 5);
  CHECK_THROWS_WITH(fusion::score_bytes(*mq, qwen, "cafe\xCC\x81", false), Catch::Contains("byte for byte"));
}

TEST_CASE("byte-level scoring of the real teachers is never below the canonical tokenization", "[real]") {
  // Short: the byte-level view of a real teacher runs about ten single-token forwards per byte.
  const std::string text = "The bridge was built in 1884.\n\nVisitors can walk along the old walls.";
  for (const auto* file : {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"}) {
    INFO(file);
    const auto path = cached_model(file);
    const auto m = load_cpu_model(path, {.threads = 0});
    const auto tok = tokenizer::load(path);
    const auto s = fusion::score_bytes(*m, tok, text, true);
    const double c = fusion::canonical_log_likelihood(*m, tok, text, true);
    WARN(file << ": byte-level " << s.log_likelihood << " canonical " << c << " ("
              << 100 * (s.log_likelihood - c) / std::abs(c) << "%), cover max " << s.stats.max_live);
    CHECK(s.log_likelihood >= c - 1e-4 * std::abs(c));
  }
}

TEST_CASE("a token tree forward gives each token the logits of its own sequence run alone") {
  // A prefix of 20 tokens (longer than the fixtures' sliding windows of 16), then a tree of new tokens
  // whose parents are cached tokens or earlier new ones; after dropping the slots of one branch
  // (kv_cache::keep_slots) a second tree grows on the rest. Each new token's logits must equal those of
  // a plain forward of its whole sequence on a fresh cache.
  const auto d = test::data_dir();
  for (const auto* name : {"llama", "gemma3_text", "gpt2", "qwen2_moe", "phi"}) {
    INFO(name);
    const auto m = load_cpu_model(d / "models" / name, {.threads = 2});
    const auto V = m->arch().dims.vocab_size;
    std::vector<std::int32_t> prefix;
    for (std::int32_t i = 0; i < 20; ++i) prefix.push_back((i * 37 + 5) % std::int32_t(V));
    auto cache = m->new_cache(128);
    m->forward(prefix, cache);
    // sequences[slot]: the token sequence whose last token sits at that slot
    std::vector<std::vector<std::int32_t>> sequences;
    std::vector<std::vector<std::int64_t>> paths;  // the slots of each sequence's tokens
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      sequences.emplace_back(prefix.begin(), prefix.begin() + long(i) + 1);
      paths.emplace_back();
      for (std::size_t j = 0; j <= i; ++j) paths.back().push_back(std::int64_t(j));
    }
    auto grow = [&](const std::vector<std::pair<std::int64_t, std::int32_t>>& nodes) {  // (parent slot, token)
      const auto first = cache.size();
      std::vector<std::int32_t> ids;
      std::vector<std::span<const std::int64_t>> tree;
      for (std::size_t j = 0; j < nodes.size(); ++j) {
        const auto [parent, id] = nodes[j];
        ids.push_back(id);
        auto seq = sequences[std::size_t(parent)];
        seq.push_back(id);
        auto path = paths[std::size_t(parent)];
        path.push_back(first + std::int64_t(j));
        sequences.push_back(seq);
        paths.push_back(path);
      }
      for (std::size_t j = 0; j < nodes.size(); ++j)  // the context: the slots before its own
        tree.emplace_back(paths[std::size_t(first) + j].data(), paths[std::size_t(first) + j].size() - 1);
      const auto r = m->forward(ids, cache, {.tree = tree});
      REQUIRE(r.logits.shape.at(0) == std::int64_t(ids.size()));
      for (std::size_t j = 0; j < ids.size(); ++j) {
        const auto& seq = sequences[std::size_t(first) + j];
        auto alone = m->new_cache(64);
        const auto ref = m->forward(seq, alone, {.all_logits = false});
        double max_ref = 0, max_d = 0;
        for (std::int64_t i = 0; i < V; ++i) {
          max_ref = std::max(max_ref, std::abs(double(ref.logits.data[std::size_t(i)])));
          max_d = std::max(max_d, std::abs(double(ref.logits.data[std::size_t(i)]) -
                                           double(r.logits.data[j * std::size_t(V) + std::size_t(i)])));
        }
        INFO("token " << j << " at position " << seq.size() - 1 << ": max|d| " << max_d << " max|ref| " << max_ref);
        CHECK(max_d <= 1e-5 * max_ref);
      }
    };
    // children of the last cached token, of an earlier one, and of new tokens of the same forward
    grow({{19, 3}, {19, 4}, {12, 7}, {20, 9}, {22, 1}, {23, 2}});
    // drop the leaf at slot 21 and the branch at slot 22 with its child at 24
    std::vector<std::int64_t> keep;
    for (std::int64_t s = 0; s < cache.size(); ++s)
      if (s != 21 && s != 22 && s != 24) keep.push_back(s);
    cache.keep_slots(keep);
    std::vector<std::vector<std::int32_t>> kept_seq;
    std::vector<std::vector<std::int64_t>> kept_path;
    std::vector<std::int64_t> to(sequences.size(), -1);
    for (std::size_t i = 0; i < keep.size(); ++i) to[std::size_t(keep[i])] = std::int64_t(i);
    for (const auto s : keep) {
      kept_seq.push_back(sequences[std::size_t(s)]);
      kept_path.push_back({});
      for (const auto p : paths[std::size_t(s)]) kept_path.back().push_back(to[std::size_t(p)]);
    }
    sequences = kept_seq;
    paths = kept_path;
    REQUIRE(cache.size() == 23);  // 20 stays, 23 moves to 21 and 25 to 22
    grow({{21, 11}, {20, 12}, {22, 13}, {23, 14}, {5, 15}});
    // a tree large enough to run as GEMMs (cpu::tree_gemm_min_rows)
    std::vector<std::pair<std::int64_t, std::int32_t>> many;
    for (std::int64_t j = 0; j < 40; ++j)
      many.push_back({j < 20 ? j % 28 : cache.size() + j - 20, std::int32_t((j * 13 + 3) % V)});
    grow(many);
    const std::vector<std::int64_t> ahead = {0, cache.size()};  // a token cannot attend to its own slot
    const std::vector<std::span<const std::int64_t>> bad = {ahead};
    CHECK_THROWS_AS(m->forward(std::vector<std::int32_t>{1}, cache, {.tree = bad}), usage_error);
  }
}

TEST_CASE("the byte-level teacher's batched forwards give the distributions of one-by-one forwards, bit for bit") {
  // A token tree runs each row as it would run alone (cpu::linear_per_row), so batching the bases of a
  // byte changes nothing; the one-by-one teacher also starts from a tiny cache (slots dropped, grown).
  for (auto& t : teachers()) {
    INFO(t.name);
    for (const auto& text : texts) {
      INFO(text);
      if (!spells(t, text)) continue;
      fusion::byte_level_teacher batched(*t.m, t.tok), single(*t.m, t.tok, {.chunk_rows = 1, .capacity = 8});
      // looking ahead at the whole text (one large tree), then at a wrong guess, then at the rest
      fusion::byte_level_teacher ahead(*t.m, t.tok, {.capacity = 16});
      ahead.look_ahead(text);
      for (std::size_t i = 0; i <= text.size(); ++i) {
        for (std::size_t c = 0; c < 257; ++c) {
          const double a = batched.distribution()[c], b = single.distribution()[c];
          INFO("byte " << i << " outcome " << c << ": " << a << " vs " << b);
          REQUIRE(a == b);
        }
        for (std::size_t c = 0; c < 257; ++c) {
          const double a = ahead.distribution()[c], b = single.distribution()[c];
          INFO("looking ahead, byte " << i << " outcome " << c << ": " << a << " vs " << b);
          REQUIRE(std::abs(a - b) <= 1e-5 * b + 1e-12);  // a large tree runs as GEMMs: rounding differs
        }
        if (i == text.size() / 2) {
          ahead.look_ahead("\x01\x02");
          CHECK(ahead.looked_ahead().size() <= 2);
        }
        if (i == text.size() / 2 + 1) ahead.look_ahead(std::string_view(text).substr(i));
        if (i < text.size()) {
          batched.push(static_cast<unsigned char>(text[i]));
          single.push(static_cast<unsigned char>(text[i]));
          ahead.push(static_cast<unsigned char>(text[i]));
        }
      }
      CHECK(ahead.looked_ahead().empty());
      CHECK(ahead.stats().bases_created == single.stats().bases_created);
      CHECK(batched.stats().bases_created == single.stats().bases_created);
      CHECK(batched.stats().forward_tokens == single.stats().forward_tokens);
      CHECK(batched.stats().forwards <= single.stats().forwards);
    }
  }
}

TEST_CASE("skipping bytes runs only the bases the next distribution needs, and gives the same distributions") {
  // skip() simulates the bytes from the text alone and runs only the survivors and their ancestors:
  // the distributions after it equal those of pushing every byte (a large tree runs as GEMMs, so to
  // rounding), with fewer tokens run.
  for (auto& t : teachers()) {
    INFO(t.name);
    for (const auto& text : texts) {
      INFO(text);
      if (!spells(t, text)) continue;
      fusion::byte_level_teacher every(*t.m, t.tok, {.chunk_rows = 1, .capacity = 8});
      fusion::byte_level_teacher skipping(*t.m, t.tok, {.capacity = 8});  // a tiny cache: slots dropped, grown
      const std::size_t cut[] = {text.size() / 3, 2 * text.size() / 3};
      std::size_t at = 0;
      for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == cut[0] || i == cut[1]) {  // skip to here in pieces: two chunks of 3 rows, then the rest
          if (i > at) skipping.skip(std::string_view(text).substr(at, i - at), i == cut[0] ? 3 : 64);
          at = i;
        }
        if (i >= cut[0] && i == at) {
          for (std::size_t c = 0; c < 257; ++c) {
            const double a = skipping.distribution()[c], b = every.distribution()[c];
            INFO("byte " << i << " outcome " << c << ": " << a << " vs " << b);
            REQUIRE(std::abs(a - b) <= 1e-5 * b + 1e-12);
          }
        }
        if (i < text.size()) {
          every.push(static_cast<unsigned char>(text[i]));
          if (i >= cut[1]) skipping.push(static_cast<unsigned char>(text[i])), at = i + 1;
        }
      }
      CHECK(skipping.stats().forward_tokens < every.stats().forward_tokens);
    }
  }
  // What no tokenization covers is named, as by push().
  auto t = std::move(teachers().front());
  fusion::byte_level_teacher v(*t.m, t.tok);
  CHECK_THROWS_AS(v.skip("\xC3("), usage_error);
  CHECK(v.text().empty());  // nothing ran: the teacher is where it was
  v.skip("Hi");
  CHECK(v.text() == "Hi");
}
