// GGUF type ids: metadata value types and ggml tensor types, with the block geometry of every
// tensor type (llama.cpp's gguf-py constants.py: GGMLValueType, GGMLQuantizationType,
// GGML_QUANT_SIZES). The one table of block and type sizes: the reader checks tensor sizes with it,
// the block decoders (gguf_blocks.hpp) static_assert their structs against it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace nexus::gguf {

enum class value_type : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};

/// Bytes of one scalar of `t` (0 for string and array: variable length).
constexpr std::size_t scalar_size(value_type t) {
  switch (t) {
    case value_type::u8:
    case value_type::i8:
    case value_type::boolean: return 1;
    case value_type::u16:
    case value_type::i16: return 2;
    case value_type::u32:
    case value_type::i32:
    case value_type::f32: return 4;
    case value_type::u64:
    case value_type::i64:
    case value_type::f64: return 8;
    case value_type::string:
    case value_type::array: return 0;
  }
  return 0;
}

constexpr std::string_view name_of(value_type t) {
  switch (t) {
    case value_type::u8: return "u8";
    case value_type::i8: return "i8";
    case value_type::u16: return "u16";
    case value_type::i16: return "i16";
    case value_type::u32: return "u32";
    case value_type::i32: return "i32";
    case value_type::f32: return "f32";
    case value_type::boolean: return "bool";
    case value_type::string: return "string";
    case value_type::array: return "array";
    case value_type::u64: return "u64";
    case value_type::i64: return "i64";
    case value_type::f64: return "f64";
  }
  return "?";
}

constexpr bool is_known(value_type t) { return static_cast<std::uint32_t>(t) <= 12; }

enum class tensor_type : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  iq2_xxs = 16,
  iq2_xs = 17,
  iq3_xxs = 18,
  iq1_s = 19,
  iq4_nl = 20,
  iq3_s = 21,
  iq2_s = 22,
  iq4_xs = 23,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  iq1_m = 29,
  bf16 = 30,
  tq1_0 = 34,
  tq2_0 = 35,
  mxfp4 = 39,
  nvfp4 = 40,
  q1_0 = 41,
};

/// Super-block size of the K-quants (ggml's QK_K).
inline constexpr std::int64_t qk_k = 256;

struct tensor_type_info {
  tensor_type type;
  std::string_view name;    // as ggml spells it
  std::int64_t block_size;  // elements per block
  std::int64_t type_size;   // bytes per block
};

inline constexpr std::array<tensor_type_info, 34> tensor_type_table{{
    {tensor_type::f32, "F32", 1, 4},
    {tensor_type::f16, "F16", 1, 2},
    {tensor_type::q4_0, "Q4_0", 32, 2 + 16},
    {tensor_type::q4_1, "Q4_1", 32, 2 + 2 + 16},
    {tensor_type::q5_0, "Q5_0", 32, 2 + 4 + 16},
    {tensor_type::q5_1, "Q5_1", 32, 2 + 2 + 4 + 16},
    {tensor_type::q8_0, "Q8_0", 32, 2 + 32},
    {tensor_type::q8_1, "Q8_1", 32, 4 + 4 + 32},
    {tensor_type::q2_k, "Q2_K", qk_k, 2 + 2 + qk_k / 16 + qk_k / 4},
    {tensor_type::q3_k, "Q3_K", qk_k, 2 + qk_k / 4 + qk_k / 8 + 12},
    {tensor_type::q4_k, "Q4_K", qk_k, 2 + 2 + qk_k / 2 + 12},
    {tensor_type::q5_k, "Q5_K", qk_k, 2 + 2 + qk_k / 2 + qk_k / 8 + 12},
    {tensor_type::q6_k, "Q6_K", qk_k, 2 + qk_k / 2 + qk_k / 4 + qk_k / 16},
    {tensor_type::q8_k, "Q8_K", qk_k, 4 + qk_k + qk_k / 8},
    {tensor_type::iq2_xxs, "IQ2_XXS", qk_k, 2 + qk_k / 4},
    {tensor_type::iq2_xs, "IQ2_XS", qk_k, 2 + qk_k / 4 + qk_k / 32},
    {tensor_type::iq3_xxs, "IQ3_XXS", qk_k, 2 + qk_k / 4 + qk_k / 8},
    {tensor_type::iq1_s, "IQ1_S", qk_k, 2 + qk_k / 8 + qk_k / 16},
    {tensor_type::iq4_nl, "IQ4_NL", 32, 2 + 16},
    {tensor_type::iq3_s, "IQ3_S", qk_k, 2 + qk_k / 4 + qk_k / 8 + qk_k / 32 + 4},
    {tensor_type::iq2_s, "IQ2_S", qk_k, 2 + qk_k / 4 + qk_k / 16},
    {tensor_type::iq4_xs, "IQ4_XS", qk_k, 2 + 2 + qk_k / 2 + qk_k / 64},
    {tensor_type::i8, "I8", 1, 1},
    {tensor_type::i16, "I16", 1, 2},
    {tensor_type::i32, "I32", 1, 4},
    {tensor_type::i64, "I64", 1, 8},
    {tensor_type::f64, "F64", 1, 8},
    {tensor_type::iq1_m, "IQ1_M", qk_k, qk_k / 8 + qk_k / 16 + qk_k / 32},
    {tensor_type::bf16, "BF16", 1, 2},
    {tensor_type::tq1_0, "TQ1_0", qk_k, 2 + 4 * 13},
    {tensor_type::tq2_0, "TQ2_0", qk_k, 2 + 64},
    {tensor_type::mxfp4, "MXFP4", 32, 1 + 16},
    {tensor_type::nvfp4, "NVFP4", 64, 4 + 32},
    {tensor_type::q1_0, "Q1_0", 128, 2 + 16},
}};

/// The table entry of a type id, or nullopt for ids ggml does not define (4, 5, 31..33, ...).
constexpr std::optional<tensor_type_info> find_tensor_type(std::uint32_t id) {
  for (const auto& t : tensor_type_table)
    if (static_cast<std::uint32_t>(t.type) == id) return t;
  return std::nullopt;
}

/// The table entry of a (valid) type: every enumerator is in the table.
constexpr const tensor_type_info& info(tensor_type t) {
  for (const auto& e : tensor_type_table)
    if (e.type == t) return e;
  return tensor_type_table[0];  // unreachable for enumerators; a cast from a bad id is the caller's bug
}
constexpr std::string_view name_of(tensor_type t) { return info(t).name; }
constexpr std::int64_t block_size(tensor_type t) { return info(t).block_size; }
constexpr std::int64_t type_size(tensor_type t) { return info(t).type_size; }

}  // namespace nexus::gguf
