// GGUF block formats: each ggml block layout defined once, as a struct checked against the type
// table (gguf_types.hpp), with a small inline decoder per block. The decoders are bit-exact with
// the gguf Python package's gguf.quants.dequantize (numpy float32 arithmetic), whose operation
// order they mirror. Every product that feeds an addition is exact in float32 (an f16 scale has 11
// significant bits, times a 6-bit sub-scale, times a quant of at most 5 bits: 22 bits, no overflow,
// no subnormal), so a fused multiply-add gives the same bits: SIMD versions may use FMA freely.
// Only Q6_K's d * scale * q can round, and it is a product alone. ggml-quants.c dequantize_row_*
// is the C specification of the same layouts.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/io/dtype.hpp"
#include "nexus/io/gguf.hpp"
#include "nexus/io/gguf_types.hpp"

namespace nexus::gguf {

// ---- layouts (ggml-common.h); f16 fields hold IEEE half bits ----------------------------------------

struct block_f32 {
  static constexpr tensor_type type = tensor_type::f32;
  static constexpr std::int64_t elements = 1;
  float v;
};
struct block_f16 {
  static constexpr tensor_type type = tensor_type::f16;
  static constexpr std::int64_t elements = 1;
  std::uint16_t v;
};
struct block_bf16 {
  static constexpr tensor_type type = tensor_type::bf16;
  static constexpr std::int64_t elements = 1;
  std::uint16_t v;
};
struct block_q4_0 {
  static constexpr tensor_type type = tensor_type::q4_0;
  static constexpr std::int64_t elements = 32;
  std::uint16_t d;
  std::uint8_t qs[16];  // element j in the low nibble of qs[j], element j + 16 in the high nibble
};
struct block_q4_1 {
  static constexpr tensor_type type = tensor_type::q4_1;
  static constexpr std::int64_t elements = 32;
  std::uint16_t d, m;
  std::uint8_t qs[16];
};
struct block_q5_0 {
  static constexpr tensor_type type = tensor_type::q5_0;
  static constexpr std::int64_t elements = 32;
  std::uint16_t d;
  std::uint8_t qh[4];  // bit j (little-endian u32) is the fifth bit of element j
  std::uint8_t qs[16];
};
struct block_q5_1 {
  static constexpr tensor_type type = tensor_type::q5_1;
  static constexpr std::int64_t elements = 32;
  std::uint16_t d, m;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct block_q8_0 {
  static constexpr tensor_type type = tensor_type::q8_0;
  static constexpr std::int64_t elements = 32;
  std::uint16_t d;
  std::int8_t qs[32];
};
struct block_q2_k {
  static constexpr tensor_type type = tensor_type::q2_k;
  static constexpr std::int64_t elements = qk_k;
  std::uint8_t scales[qk_k / 16];  // low nibble: scale, high nibble: min, per 16 elements
  std::uint8_t qs[qk_k / 4];       // 2-bit quants
  std::uint16_t d, dmin;
};
struct block_q3_k {
  static constexpr tensor_type type = tensor_type::q3_k;
  static constexpr std::int64_t elements = qk_k;
  std::uint8_t hmask[qk_k / 8];  // high bit of each quant
  std::uint8_t qs[qk_k / 4];     // low 2 bits
  std::uint8_t scales[12];       // sixteen 6-bit scales
  std::uint16_t d;
};
struct block_q4_k {
  static constexpr tensor_type type = tensor_type::q4_k;
  static constexpr std::int64_t elements = qk_k;
  std::uint16_t d, dmin;
  std::uint8_t scales[12];  // eight 6-bit scales and eight 6-bit mins
  std::uint8_t qs[qk_k / 2];
};
struct block_q5_k {
  static constexpr tensor_type type = tensor_type::q5_k;
  static constexpr std::int64_t elements = qk_k;
  std::uint16_t d, dmin;
  std::uint8_t scales[12];
  std::uint8_t qh[qk_k / 8];
  std::uint8_t qs[qk_k / 2];
};
struct block_iq4_nl {
  static constexpr tensor_type type = tensor_type::iq4_nl;
  static constexpr std::int64_t elements = 32;
  std::uint16_t d;
  std::uint8_t qs[16];  // indices into the non-linear table: element j low nibble, j + 16 high nibble
};
struct block_iq4_xs {
  static constexpr tensor_type type = tensor_type::iq4_xs;
  static constexpr std::int64_t elements = qk_k;
  std::uint16_t d;
  std::uint16_t scales_h;            // high 2 bits of the eight 6-bit sub-block scales
  std::uint8_t scales_l[qk_k / 64];  // low 4 bits, two per byte
  std::uint8_t qs[qk_k / 2];         // per 32 elements: 16 bytes as in IQ4_NL
};
struct block_mxfp4 {
  static constexpr tensor_type type = tensor_type::mxfp4;
  static constexpr std::int64_t elements = 32;
  std::uint8_t e;       // E8M0 shared exponent
  std::uint8_t qs[16];  // E2M1 values: element j low nibble, j + 16 high nibble
};
struct block_q6_k {
  static constexpr tensor_type type = tensor_type::q6_k;
  static constexpr std::int64_t elements = qk_k;
  std::uint8_t ql[qk_k / 2];  // low 4 bits
  std::uint8_t qh[qk_k / 4];  // high 2 bits
  std::int8_t scales[qk_k / 16];
  std::uint16_t d;
};

/// Each struct agrees with the one table of block and type sizes.
template <class B>
constexpr bool matches_table = sizeof(B) == static_cast<std::size_t>(type_size(B::type)) && B::elements ==
                                                                                                block_size(B::type);
static_assert(matches_table<block_f32> && matches_table<block_f16> && matches_table<block_bf16>);
static_assert(matches_table<block_q4_0> && matches_table<block_q4_1> && matches_table<block_q5_0> &&
              matches_table<block_q5_1>);
static_assert(matches_table<block_q8_0>);
static_assert(matches_table<block_q2_k> && matches_table<block_q3_k> && matches_table<block_q4_k>);
static_assert(matches_table<block_q5_k> && matches_table<block_q6_k>);
static_assert(matches_table<block_iq4_nl> && matches_table<block_iq4_xs> && matches_table<block_mxfp4>);

// ---- one block -> B::elements floats ----------------------------------------------------------------

inline void decode(const block_f32& b, float* y) { y[0] = b.v; }
inline void decode(const block_f16& b, float* y) { y[0] = f16_to_float(b.v); }
inline void decode(const block_bf16& b, float* y) { y[0] = bf16_to_float(b.v); }

inline void decode(const block_q4_0& b, float* y) {
  const float d = f16_to_float(b.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((b.qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>((b.qs[j] >> 4) - 8);
  }
}

inline void decode(const block_q4_1& b, float* y) {
  const float d = f16_to_float(b.d), m = f16_to_float(b.m);
  for (int j = 0; j < 16; ++j) {
    const float lo = d * static_cast<float>(b.qs[j] & 0x0F), hi = d * static_cast<float>(b.qs[j] >> 4);
    y[j] = lo + m;
    y[j + 16] = hi + m;
  }
}

inline std::uint32_t load_u32(const std::uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (std::uint32_t(p[3]) << 24);
}

/// The 5-bit quant of element j (0..31) of a Q5_0 / Q5_1 block.
inline int q5(const std::uint8_t* qs, std::uint32_t qh, int j) {
  const int low = j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
  return low | static_cast<int>((qh >> j) & 1u) << 4;
}

inline void decode(const block_q5_0& b, float* y) {
  const float d = f16_to_float(b.d);
  const std::uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(q5(b.qs, qh, j) - 16);
}

inline void decode(const block_q5_1& b, float* y) {
  const float d = f16_to_float(b.d), m = f16_to_float(b.m);
  const std::uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < 32; ++j) {
    const float dq = d * static_cast<float>(q5(b.qs, qh, j));
    y[j] = dq + m;
  }
}

inline void decode(const block_q8_0& b, float* y) {
  const float d = f16_to_float(b.d);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

inline void decode(const block_q2_k& b, float* y) {
  const float d = f16_to_float(b.d), dmin = f16_to_float(b.dmin);
  // Element i = 128 c + 32 s + l holds bits 2s..2s+1 of qs[32 c + l]; groups of 16 share a scale.
  for (int i = 0; i < qk_k; ++i) {
    const int c = i / 128, s = (i / 32) % 4, l = i % 32, g = i / 16;
    const float dl = d * static_cast<float>(b.scales[g] & 0x0F), ml = dmin * static_cast<float>(b.scales[g] >> 4);
    const float dq = dl * static_cast<float>((b.qs[32 * c + l] >> (2 * s)) & 3);
    y[i] = dq - ml;
  }
}

inline void decode(const block_q3_k& b, float* y) {
  const float d = f16_to_float(b.d);
  float dl[16];
  for (int g = 0; g < 16; ++g) {
    const int low = (g < 8 ? b.scales[g] : b.scales[g - 8] >> 4) & 0x0F;
    const int high = (b.scales[8 + g % 4] >> (2 * (g / 4))) & 3;
    dl[g] = d * static_cast<float>((low | high << 4) - 32);
  }
  // Element i = 128 c + 32 s + l: low bits 2s..2s+1 of qs[32 c + l]; high bit i / 32 of hmask[l],
  // and a clear high bit subtracts 4.
  for (int i = 0; i < qk_k; ++i) {
    const int c = i / 128, s = (i / 32) % 4, l = i % 32;
    const int low = (b.qs[32 * c + l] >> (2 * s)) & 3;
    const int high = (b.hmask[l] >> (i / 32)) & 1;
    y[i] = dl[i / 16] * static_cast<float>(low - (high ? 0 : 4));
  }
}

/// Scale and min of group g (0..7) of a Q4_K / Q5_K block: 6 bits each, packed in 12 bytes.
inline void scale_min_k4(const std::uint8_t* s, int g, int& scale, int& min) {
  if (g < 4) {
    scale = s[g] & 63;
    min = s[g + 4] & 63;
  } else {
    scale = (s[g + 4] & 0x0F) | ((s[g - 4] >> 6) << 4);
    min = (s[g + 4] >> 4) | ((s[g] >> 6) << 4);
  }
}

inline void decode(const block_q4_k& b, float* y) {
  const float d = f16_to_float(b.d), dmin = f16_to_float(b.dmin);
  // Group g (32 elements) holds nibble g % 2 of qs[32 (g / 2) + l].
  for (int g = 0; g < 8; ++g) {
    int sc, mn;
    scale_min_k4(b.scales, g, sc, mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l) {
      const float dq = d1 * static_cast<float>((b.qs[32 * (g / 2) + l] >> (4 * (g % 2))) & 0x0F);
      y[32 * g + l] = dq - m1;
    }
  }
}

inline void decode(const block_q5_k& b, float* y) {
  const float d = f16_to_float(b.d), dmin = f16_to_float(b.dmin);
  // As Q4_K, plus bit g of qh[l] as the fifth bit of element 32 g + l.
  for (int g = 0; g < 8; ++g) {
    int sc, mn;
    scale_min_k4(b.scales, g, sc, mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    for (int l = 0; l < 32; ++l) {
      const int q = ((b.qs[32 * (g / 2) + l] >> (4 * (g % 2))) & 0x0F) | (((b.qh[l] >> g) & 1) << 4);
      const float dq = d1 * static_cast<float>(q);
      y[32 * g + l] = dq - m1;
    }
  }
}

inline void decode(const block_q6_k& b, float* y) {
  const float d = f16_to_float(b.d);
  // Element i = 128 c + 32 k + l (k 0..3): low nibble k / 2 of ql[64 c + 32 (k % 2) + l],
  // high bits 2k..2k+1 of qh[32 c + l]; groups of 16 share a signed scale.
  for (int i = 0; i < qk_k; ++i) {
    const int c = i / 128, k = (i / 32) % 4, l = i % 32;
    const int low = (b.ql[64 * c + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
    const int high = (b.qh[32 * c + l] >> (2 * k)) & 3;
    const float dg = d * static_cast<float>(b.scales[i / 16]);
    y[i] = dg * static_cast<float>((low | high << 4) - 32);
  }
}

// ---- rows and tensors -------------------------------------------------------------------------------

// IQ4_NL / IQ4_XS: 4-bit indices into a fixed non-linear table (ggml-common.h kvalues_iq4nl).
inline constexpr std::int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                  1,    13,   25,  38,  53,  69,  89,  113};

inline void decode(const block_iq4_nl& b, float* y) {
  const float d = f16_to_float(b.d);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(kvalues_iq4nl[b.qs[j] & 15]);
    y[j + 16] = d * float(kvalues_iq4nl[b.qs[j] >> 4]);
  }
}

inline void decode(const block_iq4_xs& b, float* y) {
  const float d = f16_to_float(b.d);
  for (int ib = 0; ib < int(qk_k / 32); ++ib) {
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    const float dl = d * float(ls - 32);  // gguf-py: (d * scale) first, then times the table value
    const std::uint8_t* qs = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      y[32 * ib + j] = dl * float(kvalues_iq4nl[qs[j] & 15]);
      y[32 * ib + j + 16] = dl * float(kvalues_iq4nl[qs[j] >> 4]);
    }
  }
}

// MXFP4 (OCP microscaling): E2M1 values doubled to integers, and half the E8M0 scale (ggml-impl.h
// ggml_e8m0_to_fp32_half): 2^(e - 128), subnormal for e < 2.
inline constexpr std::int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

inline float e8m0_to_fp32_half(std::uint8_t e) {
  const std::uint32_t bits = e < 2 ? std::uint32_t(0x00200000) << e : std::uint32_t(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline void decode(const block_mxfp4& b, float* y) {
  const float d = e8m0_to_fp32_half(b.e);
  for (int j = 0; j < 16; ++j) {
    y[j] = d * float(kvalues_mxfp4[b.qs[j] & 15]);
    y[j + 16] = d * float(kvalues_mxfp4[b.qs[j] >> 4]);
  }
}

/// n_blocks consecutive blocks of B at src (any alignment) into dst.
template <class B>
void decode_blocks(const std::byte* src, float* dst, std::int64_t n_blocks) {
  for (std::int64_t i = 0; i < n_blocks; ++i) {
    B b;
    std::memcpy(&b, src + i * sizeof(B), sizeof(B));
    decode(b, dst + i * B::elements);
  }
}

inline constexpr std::string_view dequantizable_types =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, MXFP4";

/// The one switch from a tensor type to its block struct: calls f(std::type_identity<block>{}) and
/// returns true, or returns false for a type Nexus has no decoder for. can_dequantize and
/// dequantize_row (and any kernel over blocks) go through it.
template <class F>
constexpr bool visit_block(tensor_type t, F&& f) {
  switch (t) {
    case tensor_type::f32: f(std::type_identity<block_f32>{}); return true;
    case tensor_type::f16: f(std::type_identity<block_f16>{}); return true;
    case tensor_type::bf16: f(std::type_identity<block_bf16>{}); return true;
    case tensor_type::q4_0: f(std::type_identity<block_q4_0>{}); return true;
    case tensor_type::q4_1: f(std::type_identity<block_q4_1>{}); return true;
    case tensor_type::q5_0: f(std::type_identity<block_q5_0>{}); return true;
    case tensor_type::q5_1: f(std::type_identity<block_q5_1>{}); return true;
    case tensor_type::q8_0: f(std::type_identity<block_q8_0>{}); return true;
    case tensor_type::q2_k: f(std::type_identity<block_q2_k>{}); return true;
    case tensor_type::q3_k: f(std::type_identity<block_q3_k>{}); return true;
    case tensor_type::q4_k: f(std::type_identity<block_q4_k>{}); return true;
    case tensor_type::q5_k: f(std::type_identity<block_q5_k>{}); return true;
    case tensor_type::q6_k: f(std::type_identity<block_q6_k>{}); return true;
    case tensor_type::iq4_nl: f(std::type_identity<block_iq4_nl>{}); return true;
    case tensor_type::iq4_xs: f(std::type_identity<block_iq4_xs>{}); return true;
    case tensor_type::mxfp4: f(std::type_identity<block_mxfp4>{}); return true;
    case tensor_type::q8_1:
    case tensor_type::q8_k:
    case tensor_type::iq2_xxs:
    case tensor_type::iq2_xs:
    case tensor_type::iq3_xxs:
    case tensor_type::iq1_s:
    case tensor_type::iq3_s:
    case tensor_type::iq2_s:
    case tensor_type::i8:
    case tensor_type::i16:
    case tensor_type::i32:
    case tensor_type::i64:
    case tensor_type::f64:
    case tensor_type::iq1_m:
    case tensor_type::tq1_0:
    case tensor_type::tq2_0:
    case tensor_type::nvfp4:
    case tensor_type::q1_0: return false;
  }
  return false;
}

/// True when dequantize_row reads tensors of type t.
constexpr bool can_dequantize(tensor_type t) {
  return visit_block(t, [](auto) {});
}

/// Dequantises n elements (a multiple of the type's block size) of type t from src, which holds
/// n / block_size(t) blocks, into dst. `where` names the tensor in errors.
inline void dequantize_row(tensor_type t, const std::byte* src, float* dst, std::int64_t n,
                           const std::string& where = "dequantize_row") {
  if (!can_dequantize(t))
    throw gguf_error(gguf_error::code::unsupported_tensor_type, where,
                     "type " + std::string(name_of(t)) +
                         " cannot be dequantised (supported: " + std::string(dequantizable_types) + ")");
  if (n < 0 || n % block_size(t) != 0)
    throw gguf_error(gguf_error::code::size_not_multiple_of_block, where,
                     std::to_string(n) + " elements are not a whole number of " + std::string(name_of(t)) +
                         " blocks of " + std::to_string(block_size(t)));
  const std::int64_t blocks = n / block_size(t);
  visit_block(t, [&](auto block) { decode_blocks<typename decltype(block)::type>(src, dst, blocks); });
}

/// Every element of a tensor as fp32, in GGUF order (ne[0] fastest).
inline std::vector<float> dequantize(const tensor_info& t) {
  const std::string where = "tensor " + detail::quoted(t.name);
  if (!can_dequantize(t.type)) dequantize_row(t.type, nullptr, nullptr, 0, where);  // throws, naming the type
  const auto n = t.numel();
  if (static_cast<std::uint64_t>(n / block_size(t.type)) * std::uint64_t(type_size(t.type)) != t.data.size())
    throw gguf_error(gguf_error::code::out_of_bounds, where,
                     std::to_string(t.data.size()) + " bytes do not hold " + std::to_string(n) + " " +
                         std::string(name_of(t.type)) + " elements");
  std::vector<float> out(static_cast<std::size_t>(n));
  dequantize_row(t.type, t.data.data(), out.data(), n, where);
  return out;
}

}  // namespace nexus::gguf
