// GGUF (versions 2 and 3, little-endian): a zero-copy reader over a memory map that validates the
// whole header up front. Layout (llama.cpp docs/gguf.md): "GGUF", u32 version, u64 tensor count,
// u64 metadata count, the metadata (string key, u32 value type, value), the tensor infos (string
// name, u32 n_dims, n_dims u64 dims, u32 ggml type, u64 offset), padding to the alignment, the
// data section. Strings are a u64 length and bytes; arrays a u32 element type, a u64 count and the
// elements. Metadata strings and tensor data are views into the mapping: the file must outlive them.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/io/gguf_types.hpp"
#include "nexus/io/mapped_file.hpp"

namespace nexus::gguf {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

inline constexpr std::uint64_t default_alignment = 32;  // when general.alignment is absent
inline constexpr std::uint32_t max_dims = 4;            // ggml's GGML_MAX_DIMS
inline constexpr int max_array_depth = 8;               // arrays of arrays, at most this deep

using code = gguf_error::code;

namespace detail {

struct parser;

/// Where a value came from, for error messages: the file and the metadata key.
struct origin {
  const std::string* path = nullptr;
  std::string_view key;
};

[[noreturn]] inline void fail(code c, const std::string& where, const std::string& what) {
  throw gguf_error(c, where, what);
}

/// A name from the file, fit for a message: quoted, control bytes escaped, long names cut.
inline std::string quoted(std::string_view s) {
  std::string out = "'";
  const std::size_t limit = 120;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (s.size() > limit) out += "...";
  return out + "'";
}

template <class T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// True when the magnitude `u` has at most `bits` significant bits (converts exactly to a float type).
inline bool fits_mantissa(std::uint64_t u, int bits) {
  if (u == 0) return true;
  u >>= std::countr_zero(u);
  return std::bit_width(u) <= static_cast<unsigned>(bits);
}

template <class T>
inline constexpr bool is_string_type = std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>;

}  // namespace detail

/// One metadata value (or an element of an array). Cheap to copy; points into its file.
class value {
 public:
  value() = default;

  value_type type() const noexcept { return type_; }
  bool is_array() const noexcept { return type_ == value_type::array; }
  /// Element type of an array; type_mismatch otherwise.
  value_type element_type() const {
    require_array();
    return elem_;
  }
  /// Number of elements of an array; type_mismatch otherwise.
  std::size_t size() const {
    require_array();
    return static_cast<std::size_t>(count_);
  }

  /// A scalar as T: integers convert when the value fits, floats when exact (f64 -> float, integer -> float);
  /// std::string / std::string_view for strings; bool for booleans. Anything else is a gguf_error.
  template <class T>
  T as() const {
    if constexpr (detail::is_string_type<T>) {
      if (type_ != value_type::string) mismatch("a string");
      return T(reinterpret_cast<const char*>(data_), static_cast<std::size_t>(count_));
    } else {
      if (is_array() || type_ == value_type::string) mismatch(expected_name<T>());
      return convert<T>(type_, data_);
    }
  }

  /// An array of strings, as views into the file.
  std::vector<std::string_view> strings() const {
    require_array();
    if (elem_ != value_type::string) mismatch("an array of strings");
    std::vector<std::string_view> out;
    out.reserve(static_cast<std::size_t>(count_));
    for (std::uint64_t i = 0; i < count_; ++i)
      out.emplace_back(reinterpret_cast<const char*>(children_[i].data_),
                       static_cast<std::size_t>(children_[i].count_));
    return out;
  }

  /// An array of numbers (or booleans) as T, each converted by the rules of as<T>().
  template <class T>
  std::vector<T> numbers() const {
    static_assert(std::is_arithmetic_v<T>, "numbers<T>() needs an arithmetic T");
    require_array();
    if (elem_ == value_type::string || elem_ == value_type::array) mismatch("an array of " + expected_name<T>());
    std::vector<T> out(static_cast<std::size_t>(count_));
    const std::size_t step = scalar_size(elem_);
    if constexpr (!std::is_same_v<T, bool>) {  // std::vector<bool> has no data()
      if (same_representation<T>(elem_)) {
        if (count_ > 0) std::memcpy(out.data(), data_, out.size() * sizeof(T));
        return out;
      }
    }
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = convert<T>(elem_, data_ + i * step);
    return out;
  }

  /// Element i of an array (itself an array when arrays nest).
  value operator[](std::size_t i) const {
    require_array();
    if (i >= count_)
      fail(code::index_out_of_range, "element " + std::to_string(i) + " of an array of " + std::to_string(count_));
    if (children_) return children_[i];
    value v;
    v.type_ = elem_;
    v.count_ = 1;
    v.data_ = data_ + i * scalar_size(elem_);
    v.origin_ = origin_;
    return v;
  }

  /// The encoded bytes of a scalar, or of a string's characters.
  std::span<const std::byte> bytes() const {
    if (is_array()) mismatch("a scalar or string");
    return {data_, type_ == value_type::string ? static_cast<std::size_t>(count_) : scalar_size(type_)};
  }

 private:
  friend struct detail::parser;

  [[noreturn]] void fail(code c, const std::string& what) const {
    const std::string where = origin_ && origin_->path ? *origin_->path : std::string();
    detail::fail(c, where, origin_ ? "key " + detail::quoted(origin_->key) + ": " + what : what);
  }
  [[noreturn]] void mismatch(const std::string& wanted) const {
    std::string held(name_of(type_));
    if (is_array()) held = "an array of " + std::string(name_of(elem_));
    fail(code::type_mismatch, "expected " + wanted + ", the file holds " + held);
  }
  void require_array() const {
    if (!is_array()) mismatch("an array");
  }

  template <class T>
  static std::string expected_name() {
    if constexpr (std::is_same_v<T, bool>) return "a bool";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else return "an integer";
  }

  template <class T>
  static bool same_representation(value_type t) {
    switch (t) {
      case value_type::u8: return std::is_same_v<T, std::uint8_t>;
      case value_type::i8: return std::is_same_v<T, std::int8_t>;
      case value_type::u16: return std::is_same_v<T, std::uint16_t>;
      case value_type::i16: return std::is_same_v<T, std::int16_t>;
      case value_type::u32: return std::is_same_v<T, std::uint32_t>;
      case value_type::i32: return std::is_same_v<T, std::int32_t>;
      case value_type::u64: return std::is_same_v<T, std::uint64_t>;
      case value_type::i64: return std::is_same_v<T, std::int64_t>;
      case value_type::f32: return std::is_same_v<T, float>;
      case value_type::f64: return std::is_same_v<T, double>;
      case value_type::boolean: return false;  // std::vector<bool> packs bits
      case value_type::string:
      case value_type::array: return false;
    }
    return false;
  }

  /// One scalar of type t at p, as T.
  template <class T>
  T convert(value_type t, const std::byte* p) const {
    using detail::load;
    bool is_signed = false;
    std::int64_t s = 0;
    std::uint64_t u = 0;
    double f = 0;
    bool is_float = false;
    switch (t) {
      case value_type::u8: u = load<std::uint8_t>(p); break;
      case value_type::u16: u = load<std::uint16_t>(p); break;
      case value_type::u32: u = load<std::uint32_t>(p); break;
      case value_type::u64: u = load<std::uint64_t>(p); break;
      case value_type::i8: s = load<std::int8_t>(p), is_signed = true; break;
      case value_type::i16: s = load<std::int16_t>(p), is_signed = true; break;
      case value_type::i32: s = load<std::int32_t>(p), is_signed = true; break;
      case value_type::i64: s = load<std::int64_t>(p), is_signed = true; break;
      case value_type::f32: f = load<float>(p), is_float = true; break;
      case value_type::f64: f = load<double>(p), is_float = true; break;
      case value_type::boolean:
        if constexpr (std::is_same_v<T, bool>) return load<std::uint8_t>(p) != 0;
        mismatch(expected_name<T>());
      case value_type::string:
      case value_type::array: mismatch(expected_name<T>());
    }
    if constexpr (std::is_same_v<T, bool>) {
      mismatch("a bool");
    } else if constexpr (std::is_integral_v<T>) {
      if (is_float) mismatch(expected_name<T>());
      const bool fits = is_signed ? std::in_range<T>(s) : std::in_range<T>(u);
      if (!fits)
        fail(code::value_out_of_range,
             (is_signed ? std::to_string(s) : std::to_string(u)) + " does not fit the integer type asked for");
      return is_signed ? static_cast<T>(s) : static_cast<T>(u);
    } else {
      static_assert(std::is_floating_point_v<T>,
                    "as<T>() supports integers, floats, bool, std::string, std::string_view");
      if (is_float) {
        if (t == value_type::f64 && std::is_same_v<T, float> && !std::isnan(f) &&
            static_cast<double>(static_cast<float>(f)) != f)
          fail(code::value_out_of_range, "f64 " + std::to_string(f) + " is not exactly a float");
        return static_cast<T>(f);
      }
      const std::uint64_t mag = is_signed ? (s < 0 ? 0 - std::uint64_t(s) : std::uint64_t(s)) : u;
      if (!detail::fits_mantissa(mag, std::numeric_limits<T>::digits))
        fail(code::value_out_of_range, (is_signed ? std::to_string(s) : std::to_string(u)) +
                                           " is not exactly representable as a floating-point number of that type");
      return is_signed ? static_cast<T>(s) : static_cast<T>(u);
    }
  }

  value_type type_ = value_type::u8;
  value_type elem_ = value_type::u8;  // arrays
  std::uint64_t count_ = 0;           // elements of an array, bytes of a string, 1 for a scalar
  const std::byte* data_ = nullptr;   // the scalar, the string's bytes, or an array's first element
  const value* children_ = nullptr;   // arrays of strings or arrays: one value per element
  const detail::origin* origin_ = nullptr;
};

struct tensor_info {
  std::string name;
  tensor_type type{};
  std::vector<std::int64_t> ne;     // GGUF order: ne[0] is the innermost (contiguous) dimension
  std::uint64_t offset = 0;         // relative to the data section
  std::span<const std::byte> data;  // exactly the tensor's bytes, inside the mapping

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : ne) n *= d;
    return n;
  }
  /// Row-major (PyTorch) order: ne reversed.
  std::vector<std::int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

namespace detail {

/// Everything a parse produces; heap-held so that a file moves without invalidating its values.
struct parsed_file {
  mapped_file map;
  std::string path;
  std::span<const std::byte> bytes;
  std::uint32_t version = 0;
  std::uint64_t alignment = default_alignment;
  std::uint64_t data_offset = 0;
  std::vector<std::pair<std::string, value>> metadata;
  std::unordered_map<std::string_view, std::size_t> key_index;
  std::vector<tensor_info> tensors;
  std::unordered_map<std::string_view, std::size_t> tensor_index;
  std::deque<origin> origins;
  std::vector<std::vector<value>> arrays;  // children of arrays of strings / arrays
};

/// Reads the header of `s.bytes` into `s`. Never reads outside the bytes; every rule broken is a gguf_error.
struct parser {
  parsed_file& s;
  std::uint64_t pos = 0;

  const std::string& where() const { return s.path; }
  std::uint64_t left() const { return s.bytes.size() - pos; }
  const std::byte* here() const { return s.bytes.data() + pos; }
  std::string at_offset() const { return " at byte offset " + std::to_string(pos); }

  void need(std::uint64_t n, const std::string& what) {
    if (n > left())
      detail::fail(code::truncated, where(),
                   what + at_offset() + " needs " + std::to_string(n) + " bytes, the file has " +
                       std::to_string(left()) + " left");
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    const T v = detail::load<T>(here());
    pos += sizeof(T);
    return v;
  }
  std::string_view read_string(const std::string& what) {
    const auto n = read<std::uint64_t>("length of " + what);
    if (n > left())
      detail::fail(code::string_too_long, where(),
                   what + at_offset() + " has length " + std::to_string(n) + ", beyond the end of the file (" +
                       std::to_string(left()) + " bytes left)");
    const std::string_view v(reinterpret_cast<const char*>(here()), static_cast<std::size_t>(n));
    pos += n;
    return v;
  }

  value parse_value(value_type t, const detail::origin* o, int depth) {
    const std::string what = "value of key " + detail::quoted(o->key);
    value v;
    v.type_ = t;
    v.origin_ = o;
    v.count_ = 1;
    switch (t) {
      case value_type::u8:
      case value_type::i8:
      case value_type::u16:
      case value_type::i16:
      case value_type::u32:
      case value_type::i32:
      case value_type::f32:
      case value_type::u64:
      case value_type::i64:
      case value_type::f64:
      case value_type::boolean:
        need(scalar_size(t), what);
        v.data_ = here();
        if (t == value_type::boolean) check_bool(o, 1);
        pos += scalar_size(t);
        return v;
      case value_type::string: {
        const auto str = read_string(what);
        v.data_ = reinterpret_cast<const std::byte*>(str.data());
        v.count_ = str.size();
        return v;
      }
      case value_type::array: break;
    }
    if (depth >= max_array_depth)
      detail::fail(code::nesting_too_deep, where(),
                   what + at_offset() + ": arrays nest deeper than " + std::to_string(max_array_depth));
    const auto raw = read<std::uint32_t>("element type of " + what);
    if (!is_known(static_cast<value_type>(raw)))
      detail::fail(code::unknown_value_type, where(),
                   what + ": unknown array element type " + std::to_string(raw) + at_offset() + " (known: 0..12)");
    const auto e = static_cast<value_type>(raw);
    const auto n = read<std::uint64_t>("element count of " + what);
    // Smallest encoding of one element: a scalar, an empty string (8), an empty array (4 + 8).
    const std::uint64_t min_size = e == value_type::string ? 8 : e == value_type::array ? 12 : scalar_size(e);
    if (n > left() / min_size)
      detail::fail(code::count_too_large, where(),
                   what + ": array of " + std::to_string(n) + " " + std::string(name_of(e)) + at_offset() +
                       " cannot fit in the " + std::to_string(left()) + " bytes left");
    v.elem_ = e;
    v.count_ = n;
    v.data_ = here();
    if (scalar_size(e) != 0) {
      if (e == value_type::boolean) check_bool(o, n);
      pos += n * scalar_size(e);
      return v;
    }
    std::vector<value> children(static_cast<std::size_t>(n));
    for (auto& c : children) c = parse_value(e, o, depth + 1);
    v.children_ = children.data();  // a vector's buffer survives the move below
    s.arrays.push_back(std::move(children));
    return v;
  }

  void check_bool(const detail::origin* o, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto b = std::to_integer<unsigned>(here()[i]);
      if (b > 1)
        detail::fail(code::bad_bool, where(),
                     "value of key " + detail::quoted(o->key) + ": boolean byte " + std::to_string(b) +
                         " at byte offset " + std::to_string(pos + i) + " (must be 0 or 1)");
    }
  }

  void parse() {
    const auto& f = s.bytes;
    need(4, "magic");
    if (std::memcmp(f.data(), "GGUF", 4) != 0) {
      std::string got;
      for (int i = 0; i < 4; ++i) {
        if (i) got += ' ';
        got += std::to_string(std::to_integer<unsigned>(f[i]));
      }
      detail::fail(code::bad_magic, where(), "not a GGUF file: the first four bytes are " + got + ", not \"GGUF\"");
    }
    pos = 4;
    s.version = read<std::uint32_t>("version");
    if (s.version != 2 && s.version != 3) {
      const auto v = s.version;
      const std::uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
      if (s.version == 1)
        detail::fail(code::bad_version, where(),
                     "GGUF version 1 is not supported (it used 32-bit counts); supported: 2, 3");
      if (swapped >= 1 && swapped <= 3)
        detail::fail(code::bad_version, where(),
                     "big-endian GGUF file (version " + std::to_string(swapped) +
                         " with its bytes swapped); Nexus reads little-endian files only");
      detail::fail(code::bad_version, where(),
                   "GGUF version " + std::to_string(s.version) + " is not supported; supported: 2, 3");
    }
    const auto n_tensors = read<std::uint64_t>("tensor count");
    const auto n_kv = read<std::uint64_t>("metadata count");
    // Smallest metadata entry: empty key (8) + type (4) + a u8 (1); smallest tensor info: 8 + 4 + 8 + 4 + 8.
    if (n_kv > left() / 13)
      detail::fail(
          code::count_too_large, where(),
          "metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(left()) + " bytes left");
    if (n_tensors > (left() - n_kv * 13) / 32)
      detail::fail(
          code::count_too_large, where(),
          "tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(left()) + " bytes left");

    for (std::uint64_t i = 0; i < n_kv; ++i) {
      const auto key = read_string("key of metadata entry " + std::to_string(i));
      const auto type_pos = pos;
      const auto raw = read<std::uint32_t>("value type of key " + detail::quoted(key));
      if (!is_known(static_cast<value_type>(raw)))
        detail::fail(code::unknown_value_type, where(),
                     "key " + detail::quoted(key) + ": unknown value type " + std::to_string(raw) + " at byte offset " +
                         std::to_string(type_pos) + " (known: 0..12)");
      if (s.key_index.count(key))
        detail::fail(code::duplicate_key, where(),
                     "key " + detail::quoted(key) + " appears twice (again at byte offset " +
                         std::to_string(type_pos - 8 - key.size()) + ")");
      s.origins.push_back({&s.path, key});
      const value v = parse_value(static_cast<value_type>(raw), &s.origins.back(), 0);
      s.key_index.emplace(key, s.metadata.size());
      s.metadata.emplace_back(std::string(key), v);
    }

    struct pending {
      std::string_view name;
      std::uint64_t nbytes;
    };
    std::vector<pending> infos;
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      const auto info_pos = pos;
      const auto name = read_string("name of tensor " + std::to_string(i));
      const std::string t = "tensor " + detail::quoted(name);
      const auto n_dims = read<std::uint32_t>("n_dims of " + t);
      if (n_dims == 0 || n_dims > max_dims)
        detail::fail(code::bad_dims, where(),
                     t + ": n_dims " + std::to_string(n_dims) + " at byte offset " + std::to_string(pos - 4) +
                         " (must be 1.." + std::to_string(max_dims) + ")");
      tensor_info ti;
      ti.name = std::string(name);
      bool overflow = false;
      std::int64_t numel = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto dim = read<std::uint64_t>("dimension " + std::to_string(d) + " of " + t);
        if (dim == 0 || dim > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
          detail::fail(code::bad_dims, where(),
                       t + ": dimension " + std::to_string(d) + " is " +
                           std::to_string(static_cast<std::int64_t>(dim)) + " at byte offset " +
                           std::to_string(pos - 8) + " (must be positive)");
        ti.ne.push_back(static_cast<std::int64_t>(dim));
        if (!overflow && numel > std::numeric_limits<std::int64_t>::max() / ti.ne.back()) overflow = true;
        if (!overflow) numel *= ti.ne.back();
      }
      const auto raw = read<std::uint32_t>("type of " + t);
      const auto type = find_tensor_type(raw);
      if (!type)
        detail::fail(code::unknown_tensor_type, where(),
                     t + ": unknown ggml type " + std::to_string(raw) + " at byte offset " + std::to_string(pos - 4));
      ti.type = type->type;
      ti.offset = read<std::uint64_t>("offset of " + t);
      if (overflow)
        detail::fail(code::dims_overflow, where(),
                     t + ": the element count of dimensions " + dims_text(ti.ne) + " overflows 64 bits");
      if (ti.ne[0] % type->block_size != 0)
        detail::fail(code::size_not_multiple_of_block, where(),
                     t + ": row of " + std::to_string(ti.ne[0]) + " elements is not a multiple of the " +
                         std::string(type->name) + " block size " + std::to_string(type->block_size));
      const auto blocks = static_cast<std::uint64_t>(numel / type->block_size);
      if (blocks > std::numeric_limits<std::uint64_t>::max() / std::uint64_t(type->type_size))
        detail::fail(
            code::dims_overflow, where(),
            t + ": the byte size of " + std::string(type->name) + " " + dims_text(ti.ne) + " overflows 64 bits");
      if (s.tensor_index.count(name))
        detail::fail(code::duplicate_tensor, where(),
                     t + " appears twice (again at byte offset " + std::to_string(info_pos) + ")");
      s.tensor_index.emplace(name, s.tensors.size());
      infos.push_back({name, blocks * std::uint64_t(type->type_size)});
      s.tensors.push_back(std::move(ti));
    }

    if (const auto it = s.key_index.find("general.alignment"); it != s.key_index.end()) {
      const value& a = s.metadata[it->second].second;
      if (a.type() != value_type::u32)
        detail::fail(code::bad_alignment, where(),
                     "key 'general.alignment' must be a u32, the file holds " +
                         std::string(a.is_array() ? "an array" : name_of(a.type())));
      s.alignment = a.as<std::uint32_t>();
      if (s.alignment == 0 || !std::has_single_bit(s.alignment))
        detail::fail(code::bad_alignment, where(),
                     "key 'general.alignment' is " + std::to_string(s.alignment) + ", not a power of two");
    }
    s.data_offset = (pos + s.alignment - 1) / s.alignment * s.alignment;

    const std::uint64_t size = f.size();
    for (std::size_t i = 0; i < s.tensors.size(); ++i) {
      auto& ti = s.tensors[i];
      const std::string t = "tensor " + detail::quoted(ti.name);
      if (ti.offset % s.alignment != 0)
        detail::fail(code::misaligned_offset, where(),
                     t + ": offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
                         std::to_string(s.alignment));
      const auto nbytes = infos[i].nbytes;
      if (s.data_offset > size || ti.offset > size - s.data_offset || nbytes > size - s.data_offset - ti.offset)
        detail::fail(code::out_of_bounds, where(),
                     t + ": " + std::to_string(nbytes) + " bytes at data offset " + std::to_string(ti.offset) +
                         " (file offset " + std::to_string(s.data_offset) + " + " + std::to_string(ti.offset) +
                         ") run past the end of the file (" + std::to_string(size) + " bytes)");
      ti.data = f.subspan(s.data_offset + ti.offset, nbytes);
    }

    std::vector<const tensor_info*> order;
    for (const auto& ti : s.tensors) order.push_back(&ti);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
      return a->offset != b->offset ? a->offset < b->offset : a->data.size() < b->data.size();
    });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const auto* a = order[i - 1];
      const auto* b = order[i];
      if (b->offset < a->offset + a->data.size())
        detail::fail(code::overlap, where(),
                     "tensor " + detail::quoted(b->name) + " (data bytes [" + std::to_string(b->offset) + ", " +
                         std::to_string(b->offset + b->data.size()) + ")) overlaps tensor " + detail::quoted(a->name) +
                         " (data bytes [" + std::to_string(a->offset) + ", " +
                         std::to_string(a->offset + a->data.size()) + "))");
    }
  }

  static std::string dims_text(const std::vector<std::int64_t>& ne) {
    std::string out = "[";
    for (std::size_t i = 0; i < ne.size(); ++i) {
      if (i) out += ", ";
      out += std::to_string(ne[i]);
    }
    return out + "]";
  }
};

}  // namespace detail

/// A GGUF file, memory-mapped and validated up front. Movable; values and tensor views stay valid
/// while the file lives.
class file {
 public:
  explicit file(const std::filesystem::path& path) : s_(std::make_unique<detail::parsed_file>()) {
    s_->map = mapped_file(path.string());
    s_->path = path.string();
    s_->bytes = s_->map.bytes();
    detail::parser{*s_}.parse();
  }
  /// Parses bytes the caller keeps alive (tests, fuzzing); `name` stands for the path in errors.
  file(std::span<const std::byte> bytes, std::string name) : s_(std::make_unique<detail::parsed_file>()) {
    s_->path = std::move(name);
    s_->bytes = bytes;
    detail::parser{*s_}.parse();
  }

  std::uint32_t version() const noexcept { return s_->version; }
  const std::string& path() const noexcept { return s_->path; }
  std::uint64_t alignment() const noexcept { return s_->alignment; }
  /// File offset of the data section (tensor offsets are relative to it).
  std::uint64_t data_offset() const noexcept { return s_->data_offset; }
  std::span<const std::byte> bytes() const noexcept { return s_->bytes; }

  const value* find(std::string_view key) const {
    const auto it = s_->key_index.find(key);
    return it == s_->key_index.end() ? nullptr : &s_->metadata[it->second].second;
  }
  const value& at(std::string_view key) const {
    if (const auto* v = find(key)) return *v;
    detail::fail(code::missing_key, path(), "no metadata key " + detail::quoted(key));
  }
  template <class T>
  T get(std::string_view key) const {
    return at(key).as<T>();
  }
  template <class T>
  T get_or(std::string_view key, T fallback) const {
    const auto* v = find(key);
    return v ? v->as<T>() : fallback;
  }
  /// Metadata in file order.
  std::span<const std::pair<std::string, value>> metadata() const noexcept { return s_->metadata; }
  /// Tensors in file order.
  std::span<const tensor_info> tensors() const noexcept { return s_->tensors; }
  const tensor_info* tensor(std::string_view name) const {
    const auto it = s_->tensor_index.find(name);
    return it == s_->tensor_index.end() ? nullptr : &s_->tensors[it->second];
  }

 private:
  std::unique_ptr<detail::parsed_file> s_;
};

}  // namespace nexus::gguf
