// GGUF: the reader against files the gguf Python package wrote, every malformed file a typed error
// naming what is wrong, and the block formats bit-exact with gguf.quants.dequantize.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "nexus/io/gguf.hpp"

using namespace nexus;
using gguf::code;
namespace fs = std::filesystem;

namespace {

/// Writes GGUF bytes field by field, remembering where each named field starts (to mutate it).
struct builder {
  std::vector<std::byte> b;
  std::map<std::string, std::size_t> at;

  builder& mark(const std::string& name) {
    at[name] = b.size();
    return *this;
  }
  builder& raw(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  builder& u8(std::uint8_t v) { return raw(&v, 1); }
  builder& u32(std::uint32_t v) { return raw(&v, 4); }
  builder& u64(std::uint64_t v) { return raw(&v, 8); }
  builder& f32(float v) { return raw(&v, 4); }
  builder& str(std::string_view s) { return u64(s.size()).raw(s.data(), s.size()); }
  builder& pad_to(std::size_t alignment) {
    while (b.size() % alignment) b.push_back(std::byte{0});
    return *this;
  }
  template <class T>
  void put(std::size_t offset, T v) {
    std::memcpy(b.data() + offset, &v, sizeof v);
  }
};

/// A small valid v3 file: five metadata entries (one an array of strings, one nested), two tensors.
builder sample() {
  builder g;
  g.raw("GGUF", 4).mark("version").u32(3).mark("n_tensors").u64(2).mark("n_kv").u64(5);
  g.mark("kv0").str("general.architecture").mark("kv0.type").u32(8).str("llama");
  g.mark("kv1").str("general.alignment").mark("kv1.type").u32(4).mark("alignment").u32(32);
  g.mark("kv2").str("tokens").u32(9).mark("tokens.type").u32(8).mark("tokens.count").u64(3);
  g.str("a").mark("tokens.len1").str("bc").str("");
  g.mark("kv3").str("flag").u32(7).mark("flag.value").u8(1);
  g.mark("kv4").str("nested").u32(9).u32(9).mark("nested.count").u64(2);
  g.u32(5).u64(2).u32(static_cast<std::uint32_t>(-1)).u32(7);  // [-1, 7]
  g.u32(5).u64(1).u32(42);                                       // [42]
  g.mark("t0").str("w").mark("t0.n_dims").u32(2).mark("t0.ne0").u64(32).mark("t0.ne1").u64(2);
  g.mark("t0.type").u32(2).mark("t0.offset").u64(0);  // Q4_0: 2 rows of one block, 36 bytes
  g.mark("t1").str("b").u32(1).mark("t1.ne0").u64(3).mark("t1.type").u32(0).mark("t1.offset").u64(64);  // F32, 12 bytes
  g.mark("header_end").pad_to(32).mark("data");
  for (int i = 0; i < 64 + 12; ++i) g.u8(static_cast<std::uint8_t>(i));
  return g;
}

std::span<const std::byte> view(const builder& g) { return g.b; }

/// The error a file's bytes raise; checks the message names the file and `named`.
code error_of(const std::vector<std::byte>& bytes, const std::string& named = "") {
  try {
    gguf::file f(bytes, "bad.gguf");
  } catch (const gguf_error& e) {
    const std::string what = e.what();
    CHECK(what.find("bad.gguf") != std::string::npos);
    if (!named.empty()) {
      INFO(what);
      CHECK(what.find(named) != std::string::npos);
    }
    return e.get_code();
  }
  FAIL("no error raised");
  return {};
}

}  // namespace

TEST_CASE("gguf: a hand-built v3 file parses with every field") {
  const auto g = sample();
  const gguf::file f(view(g), "sample.gguf");
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.data_offset() == g.at.at("data"));
  REQUIRE(f.metadata().size() == 5);
  CHECK(f.metadata()[0].first == "general.architecture");
  CHECK(f.get<std::string>("general.architecture") == "llama");
  CHECK(f.get<std::int64_t>("general.alignment") == 32);
  CHECK(f.get<bool>("flag"));
  CHECK(f.at("tokens").strings() == std::vector<std::string_view>{"a", "bc", ""});
  CHECK(f.at("tokens")[1].as<std::string_view>() == "bc");
  const auto& nested = f.at("nested");
  REQUIRE(nested.size() == 2);
  CHECK(nested.element_type() == gguf::value_type::array);
  CHECK(nested[0].numbers<std::int32_t>() == std::vector<std::int32_t>{-1, 7});
  CHECK(nested[0].numbers<double>() == std::vector<double>{-1.0, 7.0});
  CHECK(nested[1][0].as<std::uint8_t>() == 42);
  CHECK(f.get_or<std::uint32_t>("absent", 7) == 7);
  CHECK(f.find("absent") == nullptr);

  REQUIRE(f.tensors().size() == 2);
  const auto* w = f.tensor("w");
  REQUIRE(w);
  CHECK(w->type == gguf::tensor_type::q4_0);
  CHECK(w->ne == std::vector<std::int64_t>{32, 2});
  CHECK(w->shape() == std::vector<std::int64_t>{2, 32});
  CHECK(w->numel() == 64);
  CHECK(w->data.size() == 36);
  CHECK(w->data.data() == g.b.data() + g.at.at("data"));
  const auto* b = f.tensor("b");
  REQUIRE(b);
  CHECK(b->data.size() == 12);
  CHECK(b->data.data() == g.b.data() + g.at.at("data") + 64);
  CHECK(f.tensor("nope") == nullptr);
}

TEST_CASE("gguf: values convert only when exact, and errors name the key") {
  const auto g = sample();
  const gguf::file f(view(g), "sample.gguf");
  auto code_of = [](const std::function<void()>& fn, const std::string& named) {
    try {
      fn();
    } catch (const gguf_error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find("sample.gguf") != std::string::npos);
      CHECK(std::string(e.what()).find(named) != std::string::npos);
      return e.get_code();
    }
    FAIL("no error");
    return code{};
  };
  CHECK(code_of([&] { f.get<std::uint32_t>("general.architecture"); }, "general.architecture") == code::type_mismatch);
  CHECK(code_of([&] { f.get<std::string>("general.alignment"); }, "general.alignment") == code::type_mismatch);
  CHECK(code_of([&] { f.get<std::int8_t>("missing.key"); }, "missing.key") == code::missing_key);
  CHECK(code_of([&] { (void)f.at("nested")[0].numbers<std::uint32_t>(); }, "nested") == code::value_out_of_range);
  CHECK(code_of([&] { (void)f.at("tokens")[3]; }, "tokens") == code::index_out_of_range);
  CHECK(code_of([&] { (void)f.at("tokens").numbers<float>(); }, "tokens") == code::type_mismatch);
  CHECK(code_of([&] { (void)f.at("flag").strings(); }, "flag") == code::type_mismatch);
  CHECK(code_of([&] { (void)f.get<float>("flag"); }, "flag") == code::type_mismatch);
}

TEST_CASE("gguf: every prefix of a valid file is a typed error, never a crash") {
  const auto g = sample();
  for (std::size_t n = 0; n < g.b.size() - 12; ++n) {  // the last tensor's 12 bytes make the rest of the file
    INFO("prefix of " << n << " bytes");
    const std::vector<std::byte> cut(g.b.begin(), g.b.begin() + static_cast<std::ptrdiff_t>(n));
    const auto c = error_of(cut);
    CHECK((c == code::truncated || c == code::string_too_long || c == code::count_too_large || c == code::out_of_bounds));
  }
}
