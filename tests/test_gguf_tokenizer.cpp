// Tokenizers from GGUF metadata against the tokenizer transformers builds from the same file:
// identical ids (with and without special tokens) and decoding on every recorded string, streaming
// that never emits broken UTF-8, and named errors for what is not supported.
// Reference: tests/data/gguf_tokenizers/<model>/ (tools/fixtures/make_gguf_tokenizer_cases.py); the
// real models are read from ${NEXUS_MODELS:-~/.cache/nexus/models} (tools/fetch_models.sh).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "nexus/io/gguf.hpp"
#include "nexus/tokenizer/stream.hpp"
#include "nexus/tokenizer/tokenizer.hpp"
#include "nexus/io/model_cache.hpp"
#include "reference.hpp"
#include "tokenizer_checks.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {

/// The real model file a fixture was made from; fails the test with the way to get it when absent.
fs::path model_file(const std::string& name) { return cached_model(name); }

std::vector<std::int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<std::int32_t>>(); }

void check_model(const std::string& fixture) {
  const auto dir = test::data_dir() / "gguf_tokenizers" / fixture;
  const auto meta = test::load_json(dir / "meta.json");
  const auto path =
      meta.value("local", false) ? dir / meta["file"].get<std::string>() : model_file(meta["file"].get<std::string>());
  const auto tok = tokenizer::load(path);  // the .gguf path goes through tokenizer::from_gguf
  CHECK(tok.vocab_size() == meta["vocab_size"].get<std::size_t>());
  const auto prefix = ids_of(meta["prefix"]), suffix = ids_of(meta["suffix"]);

  std::ifstream in(dir / "cases.jsonl");
  REQUIRE(in);
  std::size_t cases = 0, mismatches = 0;
  for (std::string line; std::getline(in, line); ++cases) {
    const auto c = nlohmann::json::parse(line);
    const auto text = c["text"].get<std::string>();
    const auto ids = ids_of(c["ids"]);
    auto ids_special = prefix;
    ids_special.insert(ids_special.end(), ids.begin(), ids.end());
    ids_special.insert(ids_special.end(), suffix.begin(), suffix.end());
    if (c.contains("ids_special")) ids_special = ids_of(c["ids_special"]);
    const auto decoded = c.value("decoded", text);
    const auto decoded_skip = c.value("decoded_skip", decoded);
    INFO(fixture << " case " << cases << ": " << c["text"].dump());
    const auto ours = tok.encode(text, false);
    const auto ours_special = tok.encode(text, true);
    const auto ours_decoded = tok.decode(ids, false), ours_skip = tok.decode(ids, true);
    if (!(ours == ids && ours_special == ids_special && ours_decoded == decoded && ours_skip == decoded_skip) &&
        ++mismatches <= 5) {
      CHECK(ours == ids);
      CHECK(ours_special == ids_special);
      CHECK(ours_decoded == decoded);
      CHECK(ours_skip == decoded_skip);
    }
    // Streaming: every piece valid UTF-8, and all pieces together the full decode.
    const auto streamed = test::stream_decode(tok, ids);
    if (streamed != decoded && ++mismatches <= 5) CHECK(streamed == decoded);
  }
  CHECK(cases >= meta["min_cases"].get<std::size_t>());
  CHECK(mismatches == 0);

  std::ifstream din(dir / "decode_cases.jsonl");
  REQUIRE(din);
  std::size_t decode_cases = 0, decode_mismatches = 0;
  for (std::string line; std::getline(din, line); ++decode_cases) {
    const auto c = nlohmann::json::parse(line);
    const auto ids = ids_of(c["ids"]);
    const auto decoded = c["decoded"].get<std::string>();
    const auto skip = c.value("decoded_skip", decoded);
    if ((tok.decode(ids, false) != decoded || tok.decode(ids, true) != skip) && ++decode_mismatches <= 5) {
      INFO(fixture << " decode case " << decode_cases << ": " << c["ids"].dump());
      CHECK(tok.decode(ids, false) == decoded);
      CHECK(tok.decode(ids, true) == skip);
    }
  }
  CHECK(decode_cases >= 30);
  CHECK(decode_mismatches == 0);
}

/// A GGUF file with only metadata (no tensors), written field by field.
struct gguf_writer {
  std::vector<std::byte> b;
  std::uint64_t count = 0;
  void raw(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
  }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void str(std::string_view s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  gguf_writer& string(std::string_view key, std::string_view v) {
    str(key), u32(8), str(v), ++count;
    return *this;
  }
  gguf_writer& u32_value(std::string_view key, std::uint32_t v) {
    str(key), u32(4), u32(v), ++count;
    return *this;
  }
  gguf_writer& strings(std::string_view key, const std::vector<std::string>& v) {
    str(key), u32(9), u32(8), u64(v.size()), ++count;
    for (const auto& s : v) str(s);
    return *this;
  }
  gguf_writer& floats(std::string_view key, const std::vector<float>& v) {
    str(key), u32(9), u32(6), u64(v.size()), ++count;
    for (const float f : v) raw(&f, 4);
    return *this;
  }
  gguf_writer& ints(std::string_view key, const std::vector<std::int32_t>& v) {
    str(key), u32(9), u32(5), u64(v.size()), ++count;
    for (const auto i : v) raw(&i, 4);
    return *this;
  }
  std::vector<std::byte> bytes() const {
    gguf_writer h;
    h.raw("GGUF", 4);
    h.u32(3);
    h.u64(0);
    h.u64(count);
    h.b.insert(h.b.end(), b.begin(), b.end());
    return h.b;
  }
};

tokenizer from(const gguf_writer& w) {
  const auto bytes = w.bytes();
  return tokenizer::from_gguf(gguf::file(bytes, "tiny.gguf"));
}

// A SentencePiece-style vocabulary without merges: they come from the scores.
gguf_writer tiny_llama(const std::string& arch = "llama") {
  gguf_writer w;
  w.string("general.architecture", arch).string("tokenizer.ggml.model", "llama");
  w.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "\xE2\x96\x81", "ab",
                                      "\xE2\x96\x81"
                                      "a",
                                      "\xE2\x96\x81"
                                      "ab",
                                      "<0x63>"});
  w.floats("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3, -4, -5, -6, 0});
  w.ints("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6});
  w.u32_value("tokenizer.ggml.bos_token_id", 1)
      .u32_value("tokenizer.ggml.eos_token_id", 2)
      .u32_value("tokenizer.ggml.unknown_token_id", 0);
  return w;
}

}  // namespace

TEST_CASE("gguf tokenizer: SmolLM2 (gpt2 vocabulary) equals transformers on every recorded string", "[gguf][real]") {
  check_model("smollm2");
}

TEST_CASE(
    "gguf tokenizer: Gemma 3 (llama vocabulary, merges from the token order) equals transformers on every recorded string",
    "[gguf][real]") {
  check_model("gemma3");
}

TEST_CASE(
    "gguf tokenizer: small files for the other layouts (Llama, Phi-3, merges in the file, GPT-2, Llama 3, Qwen2) equal transformers",
    "[gguf]") {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(test::data_dir() / "gguf_tokenizers"))
    if (e.path().filename().string().rfind("syn_", 0) == 0) {
      check_model(e.path().filename().string());
      ++n;
    }
  CHECK(n >= 6);
}

TEST_CASE("gguf tokenizer: merges derived from scores, byte fallback, bos, control tokens") {
  const auto t = from(tiny_llama());
  // "ab ab": Metaspace prepends ▁ once; ▁ab is reached through ▁a + b (score order: ▁a before ab? no:
  // higher score first: ab (-4) merges before ▁a (-5), and ▁ab = ▁ + ab comes from the ▁ab entry).
  CHECK(t.encode("ab") == std::vector<std::int32_t>{8});
  CHECK(t.encode("ab", true) == std::vector<std::int32_t>{1, 8});  // add_bos_token defaults to true for llama
  CHECK(t.encode("c") == std::vector<std::int32_t>{5, 9});         // ▁ then the byte token of 'c'
  CHECK(t.encode("<s>a") == std::vector<std::int32_t>{1, 3});      // control tokens are matched whole
  CHECK(t.decode(std::vector<std::int32_t>{1, 8, 9}) == "<s> abc");
  CHECK(t.decode(std::vector<std::int32_t>{1, 8, 9}, true) == "abc");
  CHECK(t.bos() == 1);
  CHECK(t.eos() == 2);
}

TEST_CASE("gguf tokenizer: what is not supported is a named error") {
  auto with_model = [](const std::string& model) {
    gguf_writer w;
    w.string("tokenizer.ggml.model", model).strings("tokenizer.ggml.tokens", {"a"});
    return w;
  };
  for (const auto* model : {"bert", "t5", "rwkv", "gemma4", ""}) {
    INFO(model);
    CHECK_THROWS_WITH(from(with_model(model)), Catch::Contains("tokenizer.ggml.model '" + std::string(model) + "'") &&
                                                   Catch::Contains("supported: gpt2, llama"));
    CHECK_THROWS_AS(from(with_model(model)), unsupported_error);
  }
  auto gpt2 = with_model("gpt2");
  gpt2.strings("tokenizer.ggml.merges", {}).string("tokenizer.ggml.pre", "starcoder");
  CHECK_THROWS_WITH(from(gpt2), Catch::Contains("tokenizer.ggml.pre 'starcoder'") && Catch::Contains("smollm") &&
                                    Catch::Contains("qwen2"));
  auto llama_pre = tiny_llama();
  llama_pre.string("tokenizer.ggml.pre", "llama-bpe");
  CHECK_THROWS_AS(from(llama_pre), unsupported_error);

  gguf_writer no_model;
  no_model.strings("tokenizer.ggml.tokens", {"a"});
  CHECK_THROWS_AS(from(no_model), gguf_error);  // missing tokenizer.ggml.model
  auto no_merges = with_model("gpt2");
  CHECK_THROWS_WITH(from(no_merges), Catch::Contains("tokenizer.ggml.merges"));
  auto bad_merge = with_model("gpt2");
  bad_merge.strings("tokenizer.ggml.merges", {"a"});
  CHECK_THROWS_AS(from(bad_merge), config_error);
  auto unknown_merge = with_model("gpt2");
  unknown_merge.strings("tokenizer.ggml.merges", {"a q"});
  CHECK_THROWS_WITH(from(unknown_merge), Catch::Contains("a q"));
  auto bad_bos = tiny_llama();
  bad_bos.u32_value("tokenizer.ggml.padding_token_id", 99);
  CHECK_THROWS_WITH(from(bad_bos), Catch::Contains("tokenizer.ggml.padding_token_id 99"));
  auto short_types = with_model("llama");
  short_types.ints("tokenizer.ggml.token_type", {1, 1}).floats("tokenizer.ggml.scores", {0});
  CHECK_THROWS_WITH(from(short_types), Catch::Contains("token_type has 2 entries for 1 tokens"));
  auto no_scores = with_model("llama");
  CHECK_THROWS_WITH(from(no_scores), Catch::Contains("tokenizer.ggml.scores"));
  auto wrong_type = with_model("llama");
  wrong_type.string("tokenizer.ggml.scores", "x");
  CHECK_THROWS_AS(from(wrong_type), gguf_error);
}
