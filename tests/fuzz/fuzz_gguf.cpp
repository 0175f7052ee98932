// libFuzzer: any byte string given to the GGUF reader either parses into metadata and tensors
// whose views lie inside the input, every tensor of a supported type dequantising, or raises
// gguf_error. Nothing else: no crash, no read outside the input, no other throw.
#include <cstdint>
#include <cstdlib>

#include "nexus/io/gguf_blocks.hpp"

namespace {

bool inside(std::span<const std::byte> outer, const std::byte* p, std::size_t n) {
  return p >= outer.data() && n <= outer.size() && std::size_t(p - outer.data()) <= outer.size() - n;
}

/// Reads every element of v as a caller would, each read either succeeding or raising gguf_error.
void touch(std::span<const std::byte> input, const nexus::gguf::value& v) {
  using vt = nexus::gguf::value_type;
  try {
    if (v.is_array()) {
      if (v.element_type() == vt::string) {
        for (auto s : v.strings())
          if (!s.empty() && !inside(input, reinterpret_cast<const std::byte*>(s.data()), s.size())) std::abort();
      } else if (v.element_type() != vt::array) {
        (void)v.numbers<double>();
        (void)v.numbers<std::int64_t>();
      }
      for (std::size_t i = 0; i < v.size() && i < 64; ++i) touch(input, v[i]);
      return;
    }
    const auto b = v.bytes();
    if (!b.empty() && !inside(input, b.data(), b.size())) std::abort();
    if (v.type() == vt::string) (void)v.as<std::string_view>();
    else if (v.type() == vt::boolean) (void)v.as<bool>();
    else (void)v.as<double>();
  } catch (const nexus::gguf_error&) {}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  try {
    const nexus::gguf::file f(input, "fuzz");
    for (const auto& [key, v] : f.metadata()) touch(input, v);
    for (const auto& t : f.tensors()) {
      if (!t.data.empty() && !inside(input, t.data.data(), t.data.size())) std::abort();
      const auto bs = nexus::gguf::block_size(t.type), ts = nexus::gguf::type_size(t.type);
      if (std::uint64_t(t.numel() / bs * ts) != t.data.size() || t.ne[0] % bs != 0) std::abort();
      if (nexus::gguf::can_dequantize(t.type)) {
        const auto x = nexus::gguf::dequantize(t);
        if (x.size() != std::size_t(t.numel())) std::abort();
      }
    }
  } catch (const nexus::gguf_error&) {}
  return 0;
}
