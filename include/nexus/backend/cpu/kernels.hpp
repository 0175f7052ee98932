// The CPU kernels over weights in their stored format (f32, f16, bf16, GGUF blocks), one table per
// instruction set: the SIMD ones compile nexus/backend/cpu/simd_kernels.hpp once for AVX2 and once
// for AVX-512 with that target enabled for those functions only, so the library needs no -march
// flag and one binary runs everywhere; `portable` is plain C++ on the reference decoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "nexus/backend/cpu/isa.hpp"
#include "nexus/io/gguf_blocks.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NEXUS_CPU_X86 1
// GCC's own AVX-512 headers initialise undefined vectors as `__m512 __Y = __Y;`, which
// -Wmaybe-uninitialized reports wherever they are inlined (the warning's place is in the header).
#if defined(__clang__)
#include <immintrin.h>
#else
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#else
#define NEXUS_CPU_X86 0
#endif

namespace nexus::cpu {

/// The kernels of one instruction set. Rows hold n elements (a whole number of blocks) and lie
/// row_bytes apart.
struct kernel_table {
  cpu_isa isa;
  /// y[r] = row r · x, r < rows.
  void (*dot_rows)(gguf::tensor_type, const std::byte* w, std::size_t row_bytes, std::int64_t rows, const float* x,
                   std::int64_t n, float* y);
  /// y[t·y_stride + r] = row r · x[t·n ..] for r < rows, t < xs: each row decoded once for several
  /// inputs, every product bit-identical to dot_rows's (a batch computes what its rows would alone).
  void (*dot_rows_multi)(gguf::tensor_type, const std::byte* w, std::size_t row_bytes, std::int64_t rows,
                         const float* x, std::int64_t xs, std::int64_t n, float* y, std::int64_t y_stride);
  /// out[r·n + i] = element i of row r, bit-identical to gguf::dequantize_row.
  void (*decode_rows)(gguf::tensor_type, const std::byte* w, std::size_t row_bytes, std::int64_t rows, std::int64_t n,
                      float* out);
  float (*dot)(const float* a, const float* b, std::int64_t n);
  /// y += a · x
  void (*axpy)(float a, const float* x, float* y, std::int64_t n);
};

namespace portable {

/// Dot product with eight partial sums (vectorisable without reassociation flags).
inline float dot(const float* a, const float* b, std::int64_t n) {
  float s[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

inline void decode_rows(gguf::tensor_type t, const std::byte* w, std::size_t row_bytes, std::int64_t rows,
                        std::int64_t n, float* out) {
  for (std::int64_t r = 0; r < rows; ++r) gguf::dequantize_row(t, w + std::size_t(r) * row_bytes, out + r * n, n);
}

inline void dot_rows(gguf::tensor_type t, const std::byte* w, std::size_t row_bytes, std::int64_t rows, const float* x,
                     std::int64_t n, float* y) {
  thread_local std::vector<float> row;  // grows once to the widest row
  if (std::int64_t(row.size()) < n) row.resize(std::size_t(n));
  for (std::int64_t r = 0; r < rows; ++r) {
    decode_rows(t, w + std::size_t(r) * row_bytes, row_bytes, 1, n, row.data());
    y[r] = dot(row.data(), x, n);
  }
}

inline void dot_rows_multi(gguf::tensor_type t, const std::byte* w, std::size_t row_bytes, std::int64_t rows,
                           const float* x, std::int64_t xs, std::int64_t n, float* y, std::int64_t y_stride) {
  thread_local std::vector<float> row;
  if (std::int64_t(row.size()) < n) row.resize(std::size_t(n));
  for (std::int64_t r = 0; r < rows; ++r) {
    decode_rows(t, w + std::size_t(r) * row_bytes, row_bytes, 1, n, row.data());
    for (std::int64_t i = 0; i < xs; ++i) y[i * y_stride + r] = dot(row.data(), x + i * n, n);
  }
}

inline void axpy(float a, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

inline constexpr kernel_table table{cpu_isa::portable, dot_rows, dot_rows_multi, decode_rows, dot, axpy};

}  // namespace portable

#if NEXUS_CPU_X86

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
namespace avx2 {
using vf = __m256;
inline constexpr int W = 8;
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float a) { return _mm256_set1_ps(a); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline float vsum(vf v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
inline void from_i8(__m128i q, vf* f) {
  f[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  f[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
}
inline void from_u8(__m128i q, vf* f) {
  f[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q));
  f[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(q, 8)));
}
inline vf vload_f16(const std::byte* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline vf vload_bf16(const std::byte* p) {
  const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
#include "nexus/backend/cpu/simd_kernels.hpp"
inline constexpr kernel_table table{cpu_isa::avx2, dot_rows, dot_rows_multi, decode_rows, dot, axpy};
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif
namespace avx512 {
using vf = __m512;
inline constexpr int W = 16;
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float a) { return _mm512_set1_ps(a); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
// GCC's _mm512_reduce_add_ps, written out: the same additions in the same order and form (vector
// operators, then one scalar addition, so the compiler treats them as it treats the intrinsic's),
// but the halves extracted without the undefined merge source (_mm256_undefined_pd) that
// -Wuninitialized reports wherever the intrinsic is inlined.
inline float vsum(vf v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, d, 1));
  const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, d, 0));
  const __m256 h = hi + lo;
  const __m128 q = _mm256_extractf128_ps(h, 1) + _mm256_extractf128_ps(h, 0);
  const __m128 p = q + _mm_movehl_ps(q, q);  // q0 + q2, q1 + q3
  return p[0] + p[1];
}
inline void from_i8(__m128i q, vf* f) { f[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)); }
inline void from_u8(__m128i q, vf* f) { f[0] = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q)); }
inline vf vload_f16(const std::byte* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline vf vload_bf16(const std::byte* p) {
  const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}
#include "nexus/backend/cpu/simd_kernels.hpp"
inline constexpr kernel_table table{cpu_isa::avx512, dot_rows, dot_rows_multi, decode_rows, dot, axpy};
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif  // NEXUS_CPU_X86

/// The kernels for `isa`, which must be available on this processor (isa_available).
inline const kernel_table& kernels_for(cpu_isa isa) {
  if (!isa_available(isa))
    throw unsupported_error("cpu kernels", "this processor does not run " + std::string(reflect::to_string(isa)));
  switch (isa) {
    case cpu_isa::portable: return portable::table;
#if NEXUS_CPU_X86
    case cpu_isa::avx2: return avx2::table;
    case cpu_isa::avx512: return avx512::table;
#else
    case cpu_isa::avx2:
    case cpu_isa::avx512: break;
#endif
  }
  return portable::table;
}

#if defined(NEXUS_CPU_BACKEND_COMPILED_ONCE)
// Every block format × instruction set is a lot of code for one translation unit. A program of many
// (the tests) compiles it once: NEXUS_CPU_BACKEND_COMPILED_ONCE defined everywhere, and in one TU
// also NEXUS_CPU_BACKEND_DEFINE before the CPU backend's headers; the others call through the table.
const kernel_table& compiled_kernels_for(cpu_isa isa);
#if defined(NEXUS_CPU_BACKEND_DEFINE)
const kernel_table& compiled_kernels_for(cpu_isa isa) { return kernels_for(isa); }
#endif
#endif

/// The kernels of the active instruction set (isa.hpp: detected, capped by NEXUS_CPU_ISA).
inline const kernel_table& kernels() {
#if defined(NEXUS_CPU_BACKEND_COMPILED_ONCE)
  static const kernel_table& k = compiled_kernels_for(active_isa());
#else
  static const kernel_table& k = kernels_for(active_isa());
#endif
  return k;
}

}  // namespace nexus::cpu
