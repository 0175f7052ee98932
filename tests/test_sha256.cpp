// SHA-256 (nexus/io/sha256.hpp) against known answers: FIPS 180-4's examples ("", "abc", the 448- and
// 896-bit messages, a million 'a'), and digests from Python's hashlib of inputs whose lengths sit on
// the padding's edges (55, 56, 63, 64, 65, 119, 120 bytes) and span several blocks. A wrong round
// constant, initial value or padding changes every one of them.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nexus/io/sha256.hpp"
#include "reference.hpp"

namespace {

std::string digest(std::string_view s) { return nexus::sha256_hex(std::as_bytes(std::span(s.data(), s.size()))); }

/// Bytes (7 i + 3) mod 256, i = 0 .. n-1.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = char((i * 7 + 3) % 256);
  return s;
}

}  // namespace

TEST_CASE("sha256: FIPS 180-4 known answers", "[sha256]") {
  CHECK(digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(digest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrs"
               "tnopqrstu") == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  CHECK(digest(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: lengths at the padding's edges and several blocks (hashlib's digests)", "[sha256]") {
  const std::pair<std::size_t, const char*> known[] = {
      {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
      {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
      {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
      {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
      {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
      {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
      {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
      {200, "2c7e18c942ef065b526a2d4e5546283749cd3ddfb51d8fc71f42717363685f46"}};
  for (const auto& [n, hex] : known) {
    INFO(n << " bytes");
    CHECK(digest(pattern(n)) == hex);
    // The same bytes in uneven pieces: the block boundary falls inside an update.
    nexus::sha256 h;
    const auto s = pattern(n);
    for (std::size_t at = 0, step = 1; at < s.size(); at += step, step = step * 2 + 1)
      h.update(std::string_view(s).substr(at, step));
    CHECK(h.hex() == hex);
  }
}

TEST_CASE("log: the cached digest says where it came from, only above the threshold", "[log]") {
  nexus::test::temp_dir d;
  const auto file = d.path / "data.bin";
  std::ofstream(file, std::ios::binary) << "some bytes";
  std::filesystem::last_write_time(file, std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
  std::vector<std::string> said;
  nexus::log::set_sink([&](nexus::log::level l, std::string_view m) {
    said.push_back(std::string(nexus::log::name_of(l)) + ": " + std::string(m));
  });
  const auto before = nexus::log::threshold();
  (void)nexus::sha256_file_cached(file, d.path / "cache");  // warn: nothing said
  CHECK(said.empty());
  nexus::log::set_threshold(nexus::log::level::debug);
  std::filesystem::remove_all(d.path / "cache");
  (void)nexus::sha256_file_cached(file, d.path / "cache");
  (void)nexus::sha256_file_cached(file, d.path / "cache");
  nexus::log::set_threshold(before);
  nexus::log::set_sink({});
  REQUIRE(said.size() == 2);
  CHECK_THAT(said[0], Catch::StartsWith("info: sha256 of ") && Catch::Contains("(10 bytes) computed"));
  CHECK_THAT(said[1], Catch::StartsWith("debug: sha256 of ") && Catch::Contains(": cached"));
  CHECK(nexus::log::parse_level("debug") == nexus::log::level::debug);
  CHECK(!nexus::log::parse_level("loud"));
}
