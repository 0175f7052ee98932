// Tokenizers against the `tokenizers` library: identical ids on every recorded string (with and
// without special tokens), identical decoding, and streaming that never emits broken UTF-8.
// Reference: tests/data/tokenizers/<kind>/cases.jsonl (tools/fixtures/make_tokenizers.py).
#include <catch2/catch.hpp>

#include <fstream>

#include "nexus/tokenizer/stream.hpp"
#include "nexus/tokenizer/tokenizer.hpp"
#include "reference.hpp"
#include "tokenizer_checks.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> tokenizer_dirs() {
  std::vector<fs::path> out;
  const auto root = test::data_dir() / "tokenizers";
  if (fs::exists(root))
    for (const auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "cases.jsonl")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("tokenizers: ids and decoding equal the tokenizers library on every recorded string") {
  const auto dirs = tokenizer_dirs();
  REQUIRE(dirs.size() >= 5);
  for (const auto& dir : dirs) {
    const auto kind = dir.filename().string();
    const auto tok = tokenizer::load(dir);
    std::ifstream in(dir / "cases.jsonl");
    std::size_t cases = 0, mismatches = 0;
    for (std::string line; std::getline(in, line); ++cases) {
      const auto c = nlohmann::json::parse(line);
      const auto text = c["text"].get<std::string>();
      const auto ids = c["ids"].get<std::vector<std::int32_t>>();
      INFO(kind << " case " << cases << ": " << c["text"].dump());
      const auto ours = tok.encode(text, false);
      const auto ours_special = tok.encode(text, true);
      const auto decoded = tok.decode(ids, false);
      const bool ok = ours == ids && ours_special == c["ids_special"].get<std::vector<std::int32_t>>() &&
                      decoded == c["decoded"].get<std::string>();
      if (!ok && ++mismatches <= 5) {  // show the first few in full
        CHECK(ours == ids);
        CHECK(ours_special == c["ids_special"].get<std::vector<std::int32_t>>());
        CHECK(decoded == c["decoded"].get<std::string>());
      }
      // Streaming: every piece valid UTF-8, and all pieces together the full decode.
      const auto streamed = test::stream_decode(tok, ids);
      if (streamed != decoded && ++mismatches <= 5) CHECK(streamed == decoded);
    }
    INFO(kind);
    CHECK(cases >= 2000);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("tokenizers: decoding of cut, byte-fallback and random id runs equals the tokenizers library") {
  for (const auto& dir : tokenizer_dirs()) {
    const auto kind = dir.filename().string();
    const auto tok = tokenizer::load(dir);
    std::ifstream in(dir / "decode_cases.jsonl");
    REQUIRE(in);
    std::size_t cases = 0, mismatches = 0;
    for (std::string line; std::getline(in, line); ++cases) {
      const auto c = nlohmann::json::parse(line);
      const auto ids = c["ids"].get<std::vector<std::int32_t>>();
      const bool ok = tok.decode(ids, false) == c["decoded"].get<std::string>() &&
                      tok.decode(ids, true) == c["decoded_skip_special"].get<std::string>();
      if (!ok && ++mismatches <= 5) {
        INFO(kind << " decode case " << cases << ": " << c["ids"].dump());
        CHECK(tok.decode(ids, false) == c["decoded"].get<std::string>());
        CHECK(tok.decode(ids, true) == c["decoded_skip_special"].get<std::string>());
      }
    }
    INFO(kind);
    CHECK(cases >= 300);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("tokenizer errors name the component") {
  const auto dir = fs::temp_directory_path() / ("nexus_tok_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto load_with = [&](const std::string& json) {
    std::ofstream(dir / "tokenizer.json") << json;
    return tokenizer::load(dir);
  };
  const std::string model = R"("model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]})";
  CHECK(load_with("{" + model + "}").encode("abab") == std::vector<std::int32_t>{2, 2});
  CHECK_THROWS_WITH(load_with(R"({"model":{"type":"WordPiece","vocab":{}}})"), Catch::Contains("WordPiece"));
  CHECK_THROWS_WITH(load_with("{" + model + R"(,"normalizer":{"type":"BertNormalizer"}})"),
                    Catch::Contains("BertNormalizer"));
  CHECK_THROWS_WITH(load_with("{" + model + R"(,"pre_tokenizer":{"type":"Whitespace"}})"),
                    Catch::Contains("Whitespace"));
  CHECK_THROWS_WITH(load_with("{" + model + R"(,"decoder":{"type":"WordPiece"}})"), Catch::Contains("WordPiece"));
  CHECK_THROWS_WITH(load_with(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["a c"]}})"), Catch::Contains("a c"));
  CHECK_THROWS_AS(load_with("{not json"), config_error);
  CHECK_THROWS_AS(tokenizer::load(dir / "missing"), io_error);
  const auto t = load_with("{" + model + "}");
  CHECK(t.encode("abc") == std::vector<std::int32_t>{2});  // 'c' has no token and there is no unk: dropped
  CHECK_THROWS_AS(t.encode("\xff"), usage_error);          // not UTF-8
  CHECK_THROWS_AS(t.decode(std::vector<std::int32_t>{7}), usage_error);
  fs::remove_all(dir);
}

TEST_CASE("UTF-8 helpers") {
  CHECK(utf8::valid("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  CHECK_FALSE(utf8::valid("\xC3"));
  CHECK_FALSE(utf8::valid("\xED\xA0\x80"));  // surrogate
  CHECK_FALSE(utf8::valid("\xC0\xAF"));      // overlong
  CHECK(utf8::lossy("a\xFF"
                    "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(utf8::incomplete_tail("ab\xF0\x9F\x98") == 3);
  CHECK(utf8::incomplete_tail("ab\xF0\x9F\x98\x80") == 0);
  CHECK(utf8::incomplete_tail("ab\xC3") == 1);
}
