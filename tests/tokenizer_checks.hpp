// Checks shared by the tokenizer tests.
#pragma once

#include <catch2/catch.hpp>

#include <span>
#include <string>

#include "nexus/tokenizer/stream.hpp"

namespace nexus::test {

/// `ids` through a stream decoder one by one: every piece must be valid UTF-8 (else the test fails);
/// returns the pieces joined, which must equal the full decode.
inline std::string stream_decode(const tokenizer& tok, std::span<const std::int32_t> ids) {
  stream_decoder stream(tok, false);
  std::string streamed;
  for (const auto id : ids) {
    const auto piece = stream.push(id);
    if (!utf8::valid(piece)) FAIL("streamed piece is not valid UTF-8");
    streamed += piece;
  }
  return streamed + stream.finish();
}

}  // namespace nexus::test
