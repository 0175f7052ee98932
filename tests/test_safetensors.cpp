// Safetensors reading, writing and validation: every malformed file gets its own typed error.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "nexus/io/checkpoint.hpp"
#include "nexus/io/safetensors_writer.hpp"

using namespace nexus;
using code = safetensors_error::code;
namespace fs = std::filesystem;

namespace {

std::vector<std::byte> with_header(const std::string& header, std::size_t data_bytes) {
  std::vector<std::byte> f(8 + header.size() + data_bytes, std::byte{0});
  for (int i = 0; i < 8; ++i) f[i] = std::byte((std::uint64_t(header.size()) >> (8 * i)) & 0xff);
  std::memcpy(f.data() + 8, header.data(), header.size());
  return f;
}

code error_of(const std::vector<std::byte>& file) {
  try {
    parse_safetensors(file, "test.safetensors");
  } catch (const safetensors_error& e) {
    CHECK(std::string(e.what()).find("test.safetensors") != std::string::npos);  // names the file
    return e.get_code();
  }
  FAIL("no error raised");
  return {};
}

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("nexus_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

}  // namespace

TEST_CASE("writer output parses back with identical tensors and metadata") {
  const std::vector<float> a{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const std::vector<std::uint16_t> b{0x3f80, 0xc000};  // bf16 1.0, -2.0
  const auto bytes = serialize_safetensors({{"a", dtype::f32, {2, 3}, std::as_bytes(std::span(a))},
                                            {"b", dtype::bf16, {2}, std::as_bytes(std::span(b))},
                                            {"empty", dtype::i64, {0, 4}, {}}},
                                           {{"format", "pt"}});
  const auto h = parse_safetensors(bytes, "mem");
  REQUIRE(h.tensors.size() == 3);
  CHECK(h.metadata.at("format") == "pt");
  CHECK(h.data_offset % 8 == 0);
  CHECK(h.tensors[0].shape == std::vector<std::int64_t>{2, 3});

  const auto dir = temp_dir("roundtrip");
  write_file(dir / "model.safetensors", bytes);
  const checkpoint ck(dir);
  const auto ta = ck.tensor("a");
  REQUIRE(ta.data.size() == a.size() * 4);
  CHECK(std::memcmp(ta.data.data(), a.data(), ta.data.size()) == 0);
  const auto tb = ck.tensor("b");
  std::uint16_t raw[2];
  std::memcpy(raw, tb.data.data(), 4);
  CHECK(bf16_to_float(raw[0]) == 1.0f);
  CHECK(bf16_to_float(raw[1]) == -2.0f);
  CHECK(ck.tensor("empty").numel() == 0);
  CHECK_THROWS_AS(ck.tensor("nope"), checkpoint_error);
  fs::remove_all(dir);
}

TEST_CASE("f16 widening matches IEEE half precision") {
  CHECK(f16_to_float(0x3c00) == 1.0f);
  CHECK(f16_to_float(0xc000) == -2.0f);
  CHECK(f16_to_float(0x7bff) == 65504.0f);
  CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_to_float(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(std::isinf(f16_to_float(0x7c00)));
  CHECK(std::isnan(f16_to_float(0x7e00)));
  CHECK(std::signbit(f16_to_float(0x8000)));
}

TEST_CASE("malformed safetensors: each rule has its own error") {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  SECTION("file shorter than the length prefix") { CHECK(error_of(std::vector<std::byte>(5)) == code::file_too_small); }
  SECTION("header length beyond the file") {
    auto f = with_header("{}", 0);
    f[0] = std::byte{0xff};
    CHECK(error_of(f) == code::header_too_large);
  }
  SECTION("header length above the 100 MB limit") {
    std::vector<std::byte> f(16, std::byte{0});
    f[4] = std::byte{0x01};  // 2^32
    CHECK(error_of(f) == code::header_too_large);
  }
  SECTION("header is not JSON") { CHECK(error_of(with_header("{\"t\": [", 0)) == code::header_not_json); }
  SECTION("header is not UTF-8") { CHECK(error_of(with_header("{\"\xff\": 1}", 0)) == code::header_not_json); }
  SECTION("header is a JSON array") { CHECK(error_of(with_header("[1, 2]", 0)) == code::header_not_object); }
  SECTION("entry is not an object") { CHECK(error_of(with_header(R"({"t": 3})", 0)) == code::entry_invalid); }
  SECTION("entry lacks data_offsets") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[2]}})", 8)) == code::entry_invalid);
  }
  SECTION("entry has an unknown key") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8)) ==
          code::entry_invalid);
  }
  SECTION("unknown dtype") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", 8)) ==
          code::unknown_dtype);
  }
  SECTION("negative dimension") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)) == code::bad_shape);
  }
  SECTION("element count overflows") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
                               8)) == code::bad_shape);
  }
  SECTION("offsets reversed") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)) == code::bad_offsets);
  }
  SECTION("offsets not a pair") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8)) == code::bad_offsets);
  }
  SECTION("offsets past the end of the file") {
    CHECK(error_of(with_header("{" + ok_entry + "}", 4)) == code::out_of_bounds);
  }
  SECTION("byte count differs from dtype x shape") {
    CHECK(error_of(with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)) == code::size_mismatch);
  }
  SECTION("two tensors overlap") {
    CHECK(
        error_of(with_header(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            8)) == code::overlap);
  }
  SECTION("bytes between tensors") {
    CHECK(
        error_of(with_header(
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
            12)) == code::gap);
  }
  SECTION("trailing bytes after the last tensor") {
    CHECK(error_of(with_header("{" + ok_entry + "}", 12)) == code::gap);
  }
  SECTION("duplicate tensor name") {
    CHECK(error_of(with_header("{" + ok_entry + "," + ok_entry + "}", 8)) == code::duplicate_name);
  }
  SECTION("metadata with a non-string value") {
    CHECK(error_of(with_header(R"({"__metadata__":{"format":1},)" + ok_entry + "}", 8)) == code::metadata_invalid);
  }
}

TEST_CASE("a header with trailing space padding is valid") {
  const auto h =
      parse_safetensors(with_header(R"({"t":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}    )", 3), "pad");
  CHECK(h.tensors.size() == 1);
}

TEST_CASE("sharded checkpoints: index, shards and their errors") {
  const std::vector<float> x{1, 2}, y{3, 4, 5};
  const auto shard1 = serialize_safetensors({{"x", dtype::f32, {2}, std::as_bytes(std::span(x))}});
  const auto shard2 = serialize_safetensors({{"y", dtype::f32, {3}, std::as_bytes(std::span(y))}});
  const auto dir = temp_dir("sharded");
  write_file(dir / "a.safetensors", shard1);
  write_file(dir / "b.safetensors", shard2);
  const std::string good = R"({"metadata":{},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})";

  auto code_for_index = [&](const std::string& index) {
    write_text(dir / checkpoint::index_file, index);
    try {
      checkpoint ck(dir);
    } catch (const safetensors_error& e) {
      return e.get_code();
    }
    FAIL("no error for index " << index);
    return code{};
  };

  SECTION("a good index opens every shard") {
    write_text(dir / checkpoint::index_file, good);
    const checkpoint ck(dir);
    CHECK(ck.size() == 2);
    CHECK(ck.shards().size() == 2);
    float v[3];
    std::memcpy(v, ck.tensor("y").data.data(), 12);
    CHECK(v[2] == 5.0f);
  }
  SECTION("missing shard file") {
    CHECK(code_for_index(R"({"weight_map":{"x":"a.safetensors","y":"c.safetensors"}})") == code::missing_shard);
  }
  SECTION("index not JSON") { CHECK(code_for_index("{weight_map") == code::index_invalid); }
  SECTION("index without weight_map") { CHECK(code_for_index(R"({"metadata":{}})") == code::index_invalid); }
  SECTION("shard path escaping the folder") {
    CHECK(code_for_index(R"({"weight_map":{"x":"../a.safetensors"}})") == code::index_invalid);
  }
  SECTION("index names a tensor the shard lacks") {
    CHECK(code_for_index(R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors","z":"b.safetensors"}})") ==
          code::index_mismatch);
  }
  SECTION("shard holds a tensor the index omits") {
    const std::vector<float> w{6};
    write_file(dir / "c.safetensors", serialize_safetensors({{"w", dtype::f32, {1}, std::as_bytes(std::span(w))},
                                                             {"y", dtype::f32, {3}, std::as_bytes(std::span(y))}}));
    CHECK(code_for_index(R"({"weight_map":{"x":"a.safetensors","y":"c.safetensors"}})") == code::index_mismatch);
  }
  SECTION("same tensor in two shards") {
    const std::vector<float> w{6};
    write_file(dir / "c.safetensors", serialize_safetensors({{"w", dtype::f32, {1}, std::as_bytes(std::span(w))},
                                                             {"x", dtype::f32, {2}, std::as_bytes(std::span(x))}}));
    CHECK(code_for_index(R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors","w":"c.safetensors"}})") ==
          code::duplicate_name);
  }
  fs::remove_all(dir);
}

TEST_CASE("missing files are io errors that name the path") {
  const auto dir = temp_dir("empty");
  try {
    checkpoint ck(dir);
    FAIL("opened an empty folder");
  } catch (const io_error& e) {
    CHECK(std::string(e.what()).find("model.safetensors") != std::string::npos);
  }
  CHECK_THROWS_AS(checkpoint(dir / "nope"), io_error);
  CHECK_THROWS_AS(safetensors_file((dir / "nope.safetensors").string()), io_error);
  fs::remove_all(dir);
}

TEST_CASE("the sharded fixture saved by transformers reads like the single-file one") {
  const checkpoint sharded(fs::path(NEXUS_TEST_DATA) / "models/llama_sharded");
  const checkpoint single(fs::path(NEXUS_TEST_DATA) / "models/llama");
  CHECK(sharded.shards().size() >= 2);
  CHECK(sharded.size() == single.size());
  for (const auto& t : single.tensors()) CHECK(sharded.tensor(t.name).shape == t.shape);
}
