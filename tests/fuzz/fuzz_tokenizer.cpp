// libFuzzer: any bytes given to encode (valid UTF-8 or not) and any ids given to decode and to
// the stream decoder either work or raise nexus::usage_error, with every tokenizer kind shipped
// in tests/data/tokenizers. Streamed text must always be valid UTF-8.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "nexus/tokenizer/stream.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace {
const std::vector<nexus::tokenizer>& tokenizers() {
  static const auto all = [] {
    std::vector<nexus::tokenizer> t;
    for (const char* kind : {"gpt2", "llama3", "qwen2", "llama2", "mistral_metaspace", "gemma"})
      t.push_back(nexus::tokenizer::load(std::string(NEXUS_TEST_DATA) + "/tokenizers/" + kind));
    return t;
  }();
  return all;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& tok = tokenizers()[data[0] % tokenizers().size()];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto ids = tok.encode(text, (data[0] & 0x80) != 0);
    if (!nexus::utf8::valid(tok.decode(ids))) std::abort();
  } catch (const nexus::usage_error&) {
    if (nexus::utf8::valid(text)) std::abort();  // valid UTF-8 must always encode
  }
  std::vector<std::int32_t> ids;
  for (std::size_t i = 1; i + 1 < size; i += 2)
    ids.push_back(std::int32_t(data[i] | (data[i + 1] << 8)) % std::int32_t(tok.vocab_size() + 8));
  try {
    nexus::stream_decoder stream(tok, (data[0] & 0x40) != 0);
    for (const auto id : ids)
      if (!nexus::utf8::valid(stream.push(id))) std::abort();
    if (!nexus::utf8::valid(stream.finish())) std::abort();
  } catch (const nexus::usage_error&) {}
  return 0;
}
