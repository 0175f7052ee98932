// libFuzzer: any byte string given to the safetensors parser either parses into tensors whose
// views lie inside the input, or raises safetensors_error. Nothing else: no crash, no other throw.
#include <cstdint>
#include <cstdlib>

#include "nexus/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  try {
    const auto h = nexus::parse_safetensors(file, "fuzz");
    for (const auto& t : h.tensors) {
      const auto begin = h.data_offset + t.begin, end = h.data_offset + t.end;
      if (begin > end || end > size) std::abort();  // a view outside the file would be a bug
      std::uint64_t numel = 1;
      for (auto d : t.shape) numel *= std::uint64_t(d);
      if (numel * nexus::size_of(t.type) != t.end - t.begin) std::abort();
    }
  } catch (const nexus::safetensors_error&) {}
  return 0;
}
