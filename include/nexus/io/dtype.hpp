// Element types of checkpoint tensors, with their safetensors spellings and sizes.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace nexus {

enum class dtype : std::uint8_t { f32, f16, bf16, i8, u8, i32, i64 };

struct dtype_info {
  dtype type;
  std::string_view safetensors_name;  // as written in a safetensors header
  std::size_t size;                   // bytes per element
};

inline constexpr std::array<dtype_info, 7> dtype_table{{
    {dtype::f32, "F32", 4},
    {dtype::f16, "F16", 2},
    {dtype::bf16, "BF16", 2},
    {dtype::i8, "I8", 1},
    {dtype::u8, "U8", 1},
    {dtype::i32, "I32", 4},
    {dtype::i64, "I64", 8},
}};

constexpr const dtype_info& info(dtype t) { return dtype_table[static_cast<std::size_t>(t)]; }
constexpr std::size_t size_of(dtype t) { return info(t).size; }
constexpr std::string_view name_of(dtype t) { return info(t).safetensors_name; }

constexpr std::optional<dtype> parse_dtype(std::string_view s) {
  for (const auto& d : dtype_table)
    if (d.safetensors_name == s) return d.type;
  return std::nullopt;
}

/// Widening conversions used by readers and tests; rounding conversions live with the kernels.
inline float bf16_to_float(std::uint16_t bits) {
  std::uint32_t u = std::uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign;  // signed zero
  } else {     // subnormal: renormalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    u = sign | (std::uint32_t(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace nexus
