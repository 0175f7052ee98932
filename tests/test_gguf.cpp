// GGUF: the reader against files the gguf Python package wrote, every malformed file a typed error
// naming what is wrong, and the block formats bit-exact with gguf.quants.dequantize.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "nexus/io/gguf.hpp"
#include "nexus/io/gguf_blocks.hpp"

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
  g.u32(5).u64(1).u32(42);                                     // [42]
  g.mark("t0").str("w").mark("t0.n_dims").u32(2).mark("t0.ne0").u64(32).mark("t0.ne1").u64(2);
  g.mark("t0.type").u32(2).mark("t0.offset").u64(0);  // Q4_0: 2 rows of one block, 36 bytes
  g.mark("t1").str("b").u32(1).mark("t1.ne0").u64(3).mark("t1.type").u32(0).mark("t1.offset").u64(64);  // F32, 12 bytes
  g.mark("header_end").pad_to(32).mark("data");
  for (int i = 0; i < 64 + 12; ++i) g.u8(static_cast<std::uint8_t>(i));
  return g;
}

std::span<const std::byte> view(const builder& g) { return g.b; }

const fs::path data_dir = fs::path(NEXUS_TEST_DATA) / "gguf";

fs::path temp_dir() {
  static const fs::path d = [] {
    auto p = fs::temp_directory_path() / ("nexus_test_gguf_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return d;
}

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
    CHECK(
        (c == code::truncated || c == code::string_too_long || c == code::count_too_large || c == code::out_of_bounds));
  }
}

namespace {

/// Writes `bytes` to a file in the temp dir and opens it: the error's code, after checking that the
/// message names the file path and `named`.
code file_error_of(const std::string& case_name, const std::vector<std::byte>& bytes, const std::string& named) {
  const auto path = temp_dir() / (case_name + ".gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  try {
    gguf::file f(path);
  } catch (const gguf_error& e) {
    const std::string what = e.what();
    INFO(case_name << ": " << what);
    CHECK(what.find(path.string()) != std::string::npos);
    CHECK(what.find(named) != std::string::npos);
    return e.get_code();
  }
  FAIL(case_name << ": no error raised");
  return {};
}

/// The sample with one field overwritten.
template <class T>
std::vector<std::byte> with(const std::string& field, T v, std::size_t extra = 0) {
  auto g = sample();
  g.put(g.at.at(field) + extra, v);
  return g.b;
}

std::vector<std::byte> nested_arrays(int depth) {
  builder g;
  g.raw("GGUF", 4).u32(3).u64(0).u64(1).str("deep").u32(9);
  for (int i = 1; i < depth; ++i) g.u32(9).u64(1);
  g.u32(4).u64(1).u32(5);
  return g.b;
}

}  // namespace

TEST_CASE("gguf: malformed files raise the specific error naming what is wrong") {
  const std::uint64_t huge = std::uint64_t(1) << 60;
  struct malformed {
    std::string name;
    std::vector<std::byte> bytes;
    code expected;
    std::string named;
  };
  auto g = sample();
  auto renamed = [&](const std::string& field, std::size_t skip, std::string_view text) {
    auto b = sample().b;
    std::memcpy(b.data() + sample().at.at(field) + skip, text.data(), text.size());
    return b;
  };
  std::vector<std::byte> cut_data(g.b.begin(), g.b.end() - 1);
  std::vector<std::byte> bad_magic = g.b;
  bad_magic[3] = std::byte{'G'};
  const std::vector<malformed> cases{
      {"bad_magic", bad_magic, code::bad_magic, "GGUF"},
      {"version_1", with("version", std::uint32_t{1}), code::bad_version, "version 1"},
      {"version_99", with("version", std::uint32_t{99}), code::bad_version, "version 99"},
      {"big_endian", with("version", std::uint32_t{0x03000000}), code::bad_version, "big-endian"},
      {"kv_count_huge", with("n_kv", huge), code::count_too_large, "metadata count"},
      {"tensor_count_huge", with("n_tensors", huge), code::count_too_large, "tensor count"},
      {"key_length_huge", with("kv0", huge), code::string_too_long, "key of metadata entry 0"},
      {"string_length_huge", with("kv0.type", huge, 4), code::string_too_long, "general.architecture"},
      {"unknown_value_type", with("kv0.type", std::uint32_t{13}), code::unknown_value_type, "general.architecture"},
      {"unknown_element_type", with("tokens.type", std::uint32_t{77}), code::unknown_value_type, "tokens"},
      {"array_count_huge", with("tokens.count", huge), code::count_too_large, "tokens"},
      {"array_string_length_huge", with("tokens.len1", huge), code::string_too_long, "tokens"},
      {"nested_count_huge", with("nested.count", huge), code::count_too_large, "nested"},
      {"nesting_too_deep", nested_arrays(gguf::max_array_depth + 1), code::nesting_too_deep, "deep"},
      {"bad_bool", with("flag.value", std::uint8_t{2}), code::bad_bool, "flag"},
      {"alignment_48", with("alignment", std::uint32_t{48}), code::bad_alignment, "general.alignment"},
      {"alignment_0", with("alignment", std::uint32_t{0}), code::bad_alignment, "general.alignment"},
      {"alignment_i32", with("kv1.type", std::uint32_t{5}), code::bad_alignment, "general.alignment"},
      {"n_dims_0", with("t0.n_dims", std::uint32_t{0}), code::bad_dims, "'w'"},
      {"n_dims_5", with("t0.n_dims", std::uint32_t{5}), code::bad_dims, "'w'"},
      {"dim_0", with("t0.ne1", std::uint64_t{0}), code::bad_dims, "'w'"},
      {"dim_negative", with("t0.ne1", ~std::uint64_t{0}), code::bad_dims, "'w'"},
      {"dims_overflow", with("t0.ne1", std::uint64_t(1) << 62), code::dims_overflow, "'w'"},
      {"bytes_overflow", with("t1.ne0", std::uint64_t(1) << 62), code::dims_overflow, "'b'"},
      {"unknown_tensor_type_4", with("t0.type", std::uint32_t{4}), code::unknown_tensor_type, "'w'"},
      {"unknown_tensor_type_31", with("t1.type", std::uint32_t{31}), code::unknown_tensor_type, "'b'"},
      {"row_not_whole_blocks", with("t0.ne0", std::uint64_t{16}), code::size_not_multiple_of_block, "'w'"},
      {"misaligned_offset", with("t1.offset", std::uint64_t{40}), code::misaligned_offset, "'b'"},
      {"data_past_end", with("t1.offset", std::uint64_t{96}), code::out_of_bounds, "'b'"},
      {"offset_huge", with("t1.offset", std::uint64_t(1) << 63), code::out_of_bounds, "'b'"},
      {"data_truncated", cut_data, code::out_of_bounds, "'b'"},
      {"tensor_bigger_than_file", with("t0.ne1", std::uint64_t{1000}), code::out_of_bounds, "'w'"},
      {"overlap", with("t1.offset", std::uint64_t{32}), code::overlap, "'w'"},
      {"duplicate_key", renamed("kv4", 8, "tokens"), code::duplicate_key, "'tokens'"},
      {"duplicate_tensor", renamed("t1", 8, "w"), code::duplicate_tensor, "'w'"},
  };
  CHECK(cases.size() >= 25);
  for (const auto& c : cases) {
    INFO(c.name);
    CHECK(file_error_of(c.name, c.bytes, c.named) == c.expected);
  }
  // The limit itself is fine.
  CHECK_NOTHROW(gguf::file(nested_arrays(gguf::max_array_depth), "deep.gguf"));
  CHECK_THROWS_AS(gguf::file(temp_dir() / "no-such-file.gguf"), io_error);
}

TEST_CASE("gguf: files the gguf package wrote read back as it wrote them") {
  const auto doc = nlohmann::json::parse(std::ifstream(data_dir / "metadata.json"));
  for (const std::string name : {"metadata_v3", "metadata_v2"}) {
    INFO(name);
    const auto& want = doc.at(name);
    const gguf::file f(data_dir / (name + ".gguf"));
    CHECK(f.version() == want.at("version").get<std::uint32_t>());
    CHECK(f.alignment() == want.at("alignment").get<std::uint64_t>());
    CHECK(f.data_offset() == want.at("data_offset").get<std::uint64_t>());
    CHECK(f.metadata().size() == want.at("n_kv").get<std::size_t>());
    CHECK(f.get<std::string>("general.architecture") == "testarch");

    // Every value, element by element, against what the script gave the writer.
    std::function<void(const gguf::value&, const nlohmann::json&)> same = [&](const gguf::value& v,
                                                                              const nlohmann::json& j) {
      using vt = gguf::value_type;
      switch (v.type()) {
        case vt::array: {
          REQUIRE(j.is_array());
          REQUIRE(v.size() == j.size());
          for (std::size_t i = 0; i < j.size(); ++i) same(v[i], j[i]);
          return;
        }
        case vt::string: CHECK(v.as<std::string>() == j.get<std::string>()); return;
        case vt::boolean: CHECK(v.as<bool>() == j.get<bool>()); return;
        case vt::f32:
        case vt::f64: {
          const double got = v.as<double>(), expected = j.get<double>();
          CHECK(std::memcmp(&got, &expected, sizeof got) == 0);  // bits: -0.0 and subnormals too
          return;
        }
        case vt::u8:
        case vt::u16:
        case vt::u32:
        case vt::u64: CHECK(v.as<std::uint64_t>() == j.get<std::uint64_t>()); return;
        case vt::i8:
        case vt::i16:
        case vt::i32:
        case vt::i64: CHECK(v.as<std::int64_t>() == j.get<std::int64_t>()); return;
      }
      FAIL("unknown value type");
    };
    for (const auto& k : want.at("keys")) {
      const auto key = k.at("key").get<std::string>();
      INFO(key);
      const auto* v = f.find(key);
      REQUIRE(v);
      CHECK(static_cast<int>(v->type()) == k.at("type").get<int>());
      if (v->is_array()) CHECK(static_cast<int>(v->element_type()) == k.at("element_type").get<int>());
      same(*v, k.at("value"));
    }
    // The bulk accessors agree with element access.
    CHECK(f.at("test.arr_string").strings() == std::vector<std::string_view>{"a", "", "ĠThe", "<0x0A>", "日本語"});
    CHECK(f.at("test.arr_i32").numbers<std::int32_t>() == std::vector<std::int32_t>{-2147483648, -1, 2147483647});
    CHECK(f.at("test.arr_u64").numbers<std::uint64_t>() == std::vector<std::uint64_t>{0, 18446744073709551615ull});
    CHECK(f.at("test.arr_f32").numbers<float>()[1] == -2.25f);
    CHECK(f.at("test.arr_f32").numbers<double>()[0] == 0.5);
    CHECK(f.at("test.arr_bool").numbers<bool>() == std::vector<bool>{true, false, true});
    CHECK(f.at("test.arr_empty_i32").numbers<std::int32_t>().empty());
    CHECK(f.at("test.nested_strings")[1].strings() == std::vector<std::string_view>{"", "w"});
    CHECK(f.get<float>("test.f32") == 0.1f);
    CHECK(f.get<std::int32_t>("test.u16") == 65535);
    CHECK_THROWS_AS(f.get<std::int16_t>("test.u16"), gguf_error);
    CHECK_THROWS_AS(f.get<float>("test.f64"), gguf_error);  // not exactly a float
    CHECK_THROWS_AS(f.get<std::uint64_t>("test.i64"), gguf_error);

    const auto& tensors = want.at("tensors");
    REQUIRE(f.tensors().size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = f.tensors()[i];
      const auto& w = tensors[i];
      INFO(w.at("name").get<std::string>());
      CHECK(t.name == w.at("name").get<std::string>());
      CHECK(static_cast<int>(t.type) == w.at("type").get<int>());
      CHECK(t.ne == w.at("ne").get<std::vector<std::int64_t>>());
      CHECK(t.offset == w.at("offset").get<std::uint64_t>());
      CHECK(t.data.size() == w.at("n_bytes").get<std::size_t>());
      CHECK(t.data.data() == f.bytes().data() + f.data_offset() + t.offset);  // a view into the mapping
      std::string hex;
      for (auto byte : t.data) {
        static constexpr char digits[] = "0123456789abcdef";
        hex += digits[std::to_integer<int>(byte) >> 4];
        hex += digits[std::to_integer<int>(byte) & 15];
      }
      CHECK(hex == w.at("hex").get<std::string>());
      CHECK(f.tensor(t.name) == &t);
    }
    const auto* t = f.tensor("t.f32");
    REQUIRE(t);
    CHECK(t->shape() == std::vector<std::int64_t>{2, 3});
    CHECK(gguf::dequantize(*t)[4] == 4.0f / 7.0f);
  }
}

TEST_CASE("gguf: a file moves with its values and views intact") {
  gguf::file a(data_dir / "metadata_v3.gguf");
  const auto* before = a.tensor("t.q8_0")->data.data();
  gguf::file b(std::move(a));
  CHECK(b.tensor("t.q8_0")->data.data() == before);
  CHECK(b.at("test.arr_string").strings()[4] == "日本語");
  CHECK(b.get<std::string_view>("test.string") == "héllo, wörld ✓ 🙂");
}

TEST_CASE("gguf: the type table matches GGML_QUANT_SIZES of the gguf package") {
  const auto doc = nlohmann::json::parse(std::ifstream(data_dir / "metadata.json"));
  const auto& sizes = doc.at("quant_sizes");
  CHECK(sizes.size() == gguf::tensor_type_table.size());
  for (const auto& [name, v] : sizes.items()) {
    INFO(name);
    const auto t = gguf::find_tensor_type(v[2].get<std::uint32_t>());
    REQUIRE(t);
    CHECK(t->name == name);
    CHECK(t->block_size == v[0].get<std::int64_t>());
    CHECK(t->type_size == v[1].get<std::int64_t>());
  }
}

TEST_CASE("gguf: every block format dequantises bit-exactly as gguf.quants.dequantize") {
  const gguf::file blocks(data_dir / "blocks.gguf"), expected(data_dir / "blocks_expected.gguf");
  std::vector<std::string> seen;
  for (const auto& t : blocks.tensors()) {
    INFO(t.name);
    seen.push_back(t.name);
    CHECK(t.name == gguf::name_of(t.type));
    const auto* e = expected.tensor(t.name);
    REQUIRE(e);
    REQUIRE(e->type == gguf::tensor_type::f32);
    REQUIRE(e->numel() == t.numel());
    const auto got = gguf::dequantize(t);
    REQUIRE(got.size() * 4 == e->data.size());
    std::size_t differing = 0, first = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      std::uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, e->data.data() + 4 * i, 4);
      if (a != b && differing++ == 0) first = i;
    }
    INFO("first differing element: " << first);
    CHECK(differing == 0);
    // Row by row through dequantize_row gives the same.
    const auto row = t.ne[0];
    const auto row_bytes = static_cast<std::size_t>(row / gguf::block_size(t.type) * gguf::type_size(t.type));
    std::vector<float> r(static_cast<std::size_t>(row));
    gguf::dequantize_row(t.type, t.data.data() + row_bytes, r.data(), row);
    CHECK(std::memcmp(r.data(), got.data() + row, r.size() * 4) == 0);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"BF16", "F16", "F32", "IQ4_NL", "IQ4_XS", "MXFP4", "Q2_K", "Q3_K", "Q4_0",
                                         "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0"});
}

TEST_CASE("gguf: unsupported block formats and partial blocks are named errors") {
  std::vector<std::byte> src(64);
  std::vector<float> dst(256);
  for (auto t :
       {gguf::tensor_type::q8_1, gguf::tensor_type::q8_k, gguf::tensor_type::iq2_xxs, gguf::tensor_type::i32}) {
    try {
      gguf::dequantize_row(t, src.data(), dst.data(), gguf::block_size(t));
      FAIL("no error");
    } catch (const gguf_error& e) {
      CHECK(e.get_code() == code::unsupported_tensor_type);
      CHECK(std::string(e.what()).find(std::string(gguf::name_of(t))) != std::string::npos);
    }
  }
  try {
    gguf::dequantize_row(gguf::tensor_type::q4_0, src.data(), dst.data(), 31);
    FAIL("no error");
  } catch (const gguf_error& e) {
    CHECK(e.get_code() == code::size_not_multiple_of_block);
  }
  const gguf::file f(data_dir / "metadata_v3.gguf");
  try {
    gguf::dequantize(*f.tensor("t.i32"));
    FAIL("no error");
  } catch (const gguf_error& e) {
    CHECK(e.get_code() == code::unsupported_tensor_type);
    CHECK(std::string(e.what()).find("t.i32") != std::string::npos);
  }
}
