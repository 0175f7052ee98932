// Writes safetensors files (bundles, tests). Output is readable by the reference implementation:
// header padded with spaces to 8-byte alignment, tensors laid out back to back in the given order.
#pragma once

#include <cstdio>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/io/dtype.hpp"

namespace nexus {

struct tensor_to_write {
  std::string name;
  dtype type{};
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
};

/// The complete file as bytes (for in-memory use and fuzz seeds).
inline std::vector<std::byte> serialize_safetensors(const std::vector<tensor_to_write>& tensors,
                                                    const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    std::uint64_t numel = 1;
    for (auto d : t.shape) {
      if (d < 0) throw usage_error(t.name, "negative dimension in shape");
      numel *= std::uint64_t(d);
    }
    if (numel * size_of(t.type) != t.data.size())
      throw usage_error(t.name, "data has " + std::to_string(t.data.size()) + " bytes, shape and dtype need " +
                                    std::to_string(numel * size_of(t.type)));
    if (header.contains(t.name)) throw usage_error(t.name, "tensor name given twice");
    header[t.name] = {
        {"dtype", name_of(t.type)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<std::byte> out(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out[i] = std::byte((std::uint64_t(text.size()) >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, text.data(), text.size());
  auto* p = out.data() + 8 + text.size();
  for (const auto& t : tensors) {
    if (!t.data.empty()) std::memcpy(p, t.data.data(), t.data.size());
    p += t.data.size();
  }
  return out;
}

inline void write_safetensors(const std::string& path, const std::vector<tensor_to_write>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  const auto bytes = serialize_safetensors(tensors, metadata);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw io_error(path, "cannot open for writing");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) throw io_error(path, "write failed");
}

}  // namespace nexus
