// Safetensors: header parsing with full validation, and a zero-copy reader over a memory map.
// Format: 8-byte little-endian header length N, N bytes of JSON, then the data section.
// Rules enforced (same as the reference Rust implementation, plus duplicate detection):
// tensors tile the data section exactly, in any order, with no overlap and no gap.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/io/dtype.hpp"
#include "nexus/io/gguf_types.hpp"
#include "nexus/io/mapped_file.hpp"

namespace nexus {

/// Largest header accepted (the reference implementation's limit).
inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

/// A tensor inside a checkpoint: its bytes are a view into the mapped file.
struct tensor_view {
  std::string name;
  dtype type{};  // GGUF tensors: f32, f16 or bf16 when ggml_type is one of them, else u8 (raw blocks)
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
  std::optional<gguf::tensor_type> ggml_type;  // set for tensors of a GGUF file: their block format

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

/// What a header says: tensors (data relative to the start of the data section) and metadata.
struct safetensors_header {
  struct entry {
    std::string name;
    dtype type{};
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0, end = 0;
  };
  std::vector<entry> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  std::uint64_t data_offset = 0;  // file offset of the data section
};

namespace detail {

using st_code = safetensors_error::code;

[[noreturn]] inline void st_fail(st_code c, const std::string& where, const std::string& what) {
  throw safetensors_error(c, where, what);
}

/// Parses JSON and rejects duplicate keys at any depth (nlohmann would silently keep the last).
inline nlohmann::json parse_json_unique_keys(std::string_view text, const std::string& where, st_code syntax_code,
                                             st_code duplicate_code) {
  std::vector<std::vector<std::string>> open_objects;
  std::string duplicate;
  auto cb = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using ev_t = nlohmann::json::parse_event_t;
    if (ev == ev_t::object_start) open_objects.emplace_back();
    else if (ev == ev_t::object_end && !open_objects.empty()) open_objects.pop_back();
    else if (ev == ev_t::key && !open_objects.empty() && duplicate.empty()) {
      auto& keys = open_objects.back();
      const auto& k = parsed.get_ref<const std::string&>();
      if (std::find(keys.begin(), keys.end(), k) != keys.end()) duplicate = k;
      else keys.push_back(k);
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::exception& e) {
    st_fail(syntax_code, where, std::string("invalid JSON: ") + e.what());
  }
  if (!duplicate.empty()) st_fail(duplicate_code, where, "duplicate key '" + duplicate + "'");
  return j;
}

inline std::uint64_t checked_u64(const nlohmann::json& v, st_code c, const std::string& where,
                                 const std::string& what) {
  if (!v.is_number_unsigned()) st_fail(c, where, what + " must be a non-negative integer, got " + v.dump());
  return v.get<std::uint64_t>();
}

}  // namespace detail

/// Parses and validates the header of a safetensors file held in `file` (the whole file).
/// `where` names the file in errors. Never reads outside `file`.
inline safetensors_header parse_safetensors(std::span<const std::byte> file, const std::string& where) {
  using detail::st_fail;
  using c = safetensors_error::code;
  if (file.size() < 8)
    st_fail(c::file_too_small, where,
            "file has " + std::to_string(file.size()) + " bytes, fewer than the 8-byte header length");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | std::to_integer<std::uint64_t>(file[i]);
  if (n > safetensors_max_header || n > file.size() - 8)
    st_fail(c::header_too_large, where,
            "header length " + std::to_string(n) + " exceeds " +
                (n > safetensors_max_header ? "the limit of 100000000 bytes"
                                            : "the file size " + std::to_string(file.size())));
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), n);
  const auto j = detail::parse_json_unique_keys(text, where, c::header_not_json, c::duplicate_name);
  if (!j.is_object())
    st_fail(c::header_not_object, where, "header must be a JSON object, got " + std::string(j.type_name()));

  safetensors_header h;
  h.data_offset = 8 + n;
  const std::uint64_t data_size = file.size() - h.data_offset;
  for (const auto& [name, e] : j.items()) {
    const std::string at = where + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!e.is_object()) st_fail(c::metadata_invalid, where, "__metadata__ must be an object of strings");
      for (const auto& [k, v] : e.items()) {
        if (!v.is_string())
          st_fail(c::metadata_invalid, where, "__metadata__['" + k + "'] must be a string, got " + v.dump());
        h.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    if (!e.is_object()) st_fail(c::entry_invalid, at, "entry must be an object");
    for (const auto& [k, v] : e.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        st_fail(c::entry_invalid, at, "unexpected key '" + k + "'");
    if (!e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      st_fail(c::entry_invalid, at, "entry needs dtype, shape and data_offsets");
    safetensors_header::entry t;
    t.name = name;
    const auto& dt = e["dtype"];
    if (!dt.is_string()) st_fail(c::entry_invalid, at, "dtype must be a string");
    const auto parsed = parse_dtype(dt.get<std::string>());
    if (!parsed)
      st_fail(c::unknown_dtype, at,
              "dtype '" + dt.get<std::string>() + "' is not supported (supported: F32, F16, BF16, I8, U8, I32, I64)");
    t.type = *parsed;

    const auto& sh = e["shape"];
    if (!sh.is_array()) st_fail(c::bad_shape, at, "shape must be a list");
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : sh) {
      const auto v = detail::checked_u64(d, c::bad_shape, at, "shape dimension");
      if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max())) overflow = true;
      else if (v != 0 && numel > std::numeric_limits<std::uint64_t>::max() / v) overflow = true;
      else numel *= v;
      t.shape.push_back(
          static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max())));
    }
    if (overflow || numel > data_size) {
      // A zero dimension makes the tensor empty whatever the others are.
      if (std::find(t.shape.begin(), t.shape.end(), 0) == t.shape.end())
        st_fail(c::bad_shape, at, "shape " + sh.dump() + " has more elements than the data section has bytes");
      numel = 0;
    }

    const auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2) st_fail(c::bad_offsets, at, "data_offsets must be [begin, end]");
    t.begin = detail::checked_u64(off[0], c::bad_offsets, at, "data_offsets begin");
    t.end = detail::checked_u64(off[1], c::bad_offsets, at, "data_offsets end");
    if (t.begin > t.end)
      st_fail(c::bad_offsets, at, "data_offsets begin " + std::to_string(t.begin) + " > end " + std::to_string(t.end));
    if (t.end > data_size)
      st_fail(c::out_of_bounds, at,
              "data_offsets end " + std::to_string(t.end) + " beyond the data section of " + std::to_string(data_size) +
                  " bytes");
    if (t.end - t.begin != numel * size_of(t.type))
      st_fail(c::size_mismatch, at,
              "holds " + std::to_string(t.end - t.begin) + " bytes but " + std::string(name_of(t.type)) + " " +
                  sh.dump() + " needs " + std::to_string(numel * size_of(t.type)));
    h.tensors.push_back(std::move(t));
  }

  // The tensors must tile [0, data_size) exactly.
  std::vector<const safetensors_header::entry*> order;
  for (const auto& t : h.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  std::uint64_t covered = 0;
  const safetensors_header::entry* prev = nullptr;
  for (const auto* t : order) {
    if (t->begin < covered)
      st_fail(c::overlap, where + ": tensor '" + t->name + "'",
              "bytes [" + std::to_string(t->begin) + ", " + std::to_string(t->end) + ") overlap tensor '" + prev->name +
                  "'");
    if (t->begin > covered)
      st_fail(c::gap, where,
              "bytes [" + std::to_string(covered) + ", " + std::to_string(t->begin) +
                  ") of the data section belong to no tensor");
    covered = t->end;
    if (t->end > t->begin) prev = t;
  }
  if (covered != data_size)
    st_fail(c::gap, where,
            "bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
                ") of the data section belong to no tensor");
  return h;
}

/// One safetensors file, memory-mapped; tensors are views into the map.
class safetensors_file {
 public:
  explicit safetensors_file(const std::string& path) : map_(path), header_(parse_safetensors(map_.bytes(), path)) {
    for (std::size_t i = 0; i < header_.tensors.size(); ++i) index_.emplace(header_.tensors[i].name, i);
  }

  const std::string& path() const noexcept { return map_.path(); }
  const std::map<std::string, std::string>& metadata() const noexcept { return header_.metadata; }
  std::size_t size() const noexcept { return header_.tensors.size(); }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  tensor_view tensor(std::size_t i) const {
    const auto& e = header_.tensors.at(i);
    return {e.name, e.type, e.shape, map_.bytes().subspan(header_.data_offset + e.begin, e.end - e.begin),
            std::nullopt};
  }
  tensor_view tensor(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) throw checkpoint_error(path(), "no tensor named '" + name + "'");
    return tensor(it->second);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : header_.tensors) out.push_back(e.name);
    return out;
  }

 private:
  mapped_file map_;
  safetensors_header header_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace nexus
