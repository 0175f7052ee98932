// The SIMD kernels over stored weights, written once against a small vector vocabulary (vf, W,
// vload, vfma, from_i8, ...) and compiled once per instruction set: nexus/backend/cpu/kernels.hpp
// includes this file inside `namespace <isa>` with that set's vocabulary and target enabled.
// No include guard on purpose.
//
// Every block format decodes to runs of 16 quants q (bytes) with a scale a and an offset b, and
// each value is fma(a, q, b). For every format that is the same single rounding of the same exact
// value as gguf_blocks.hpp's decoder (see there), so decoded rows are bit-identical to it (a product
// alone is fma(a, q, -0): adding -0 keeps the sign of a zero product); dot
// products differ from a sequential sum only in their summation order.

// ---- from bytes to values -------------------------------------------------------------------------

inline __m128i load16(const std::byte* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline float load_f16(const std::byte* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
inline std::uint32_t load_u32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline __m128i low_nibbles(__m128i q) { return _mm_and_si128(q, _mm_set1_epi8(0x0F)); }
inline __m128i high_nibbles(__m128i q) { return _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F)); }
/// 16 bits -> 16 bytes, byte j = `value` where bit j is set, else 0.
inline __m128i bits_to_bytes(std::uint32_t bits, char value) {
  const __m128i spread = _mm_shuffle_epi8(_mm_cvtsi32_si128(int(bits & 0xFFFFu)),
                                          _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m128i bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(spread, bit), bit), _mm_set1_epi8(value));
}

/// Sends fma(a, q, b) for 16 quants at element offset `off` to the sink, W at a time.
template <bool Signed, class Sink>
inline void emit16(Sink& s, std::int64_t off, __m128i q, vf a, vf b) {
  vf f[16 / W];
  if constexpr (Signed) from_i8(q, f);
  else from_u8(q, f);
  for (int k = 0; k < 16 / W; ++k) s.vec(off + k * W, vfma(a, f[k], b));
}

// ---- one block of each format (layouts: nexus/io/gguf_blocks.hpp) -------------------------------

struct null_sink {
  void vec(std::int64_t, vf) {}
  void one(std::int64_t, float) {}
};

#define NEXUS_FIELD(B, f) (p + offsetof(B, f))

template <class Sink>
inline void decode_block(gguf::block_q4_0, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q4_0;
  const vf d = vset1(load_f16(NEXUS_FIELD(B, d))), minus_zero = vset1(-0.0f);
  const __m128i q = load16(NEXUS_FIELD(B, qs)), eight = _mm_set1_epi8(8);
  emit16<true>(s, off, _mm_sub_epi8(low_nibbles(q), eight), d, minus_zero);
  emit16<true>(s, off + 16, _mm_sub_epi8(high_nibbles(q), eight), d, minus_zero);
}

template <class Sink>
inline void decode_block(gguf::block_q4_1, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q4_1;
  const vf d = vset1(load_f16(NEXUS_FIELD(B, d))), m = vset1(load_f16(NEXUS_FIELD(B, m)));
  const __m128i q = load16(NEXUS_FIELD(B, qs));
  emit16<false>(s, off, low_nibbles(q), d, m);
  emit16<false>(s, off + 16, high_nibbles(q), d, m);
}

template <class Sink>
inline void decode_block(gguf::block_q5_0, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q5_0;
  const vf d = vset1(load_f16(NEXUS_FIELD(B, d))), minus_zero = vset1(-0.0f);
  const std::uint32_t qh = load_u32(NEXUS_FIELD(B, qh));
  const __m128i q = load16(NEXUS_FIELD(B, qs)), sixteen = _mm_set1_epi8(16);
  emit16<true>(s, off, _mm_sub_epi8(_mm_or_si128(low_nibbles(q), bits_to_bytes(qh, 16)), sixteen), d, minus_zero);
  emit16<true>(s, off + 16, _mm_sub_epi8(_mm_or_si128(high_nibbles(q), bits_to_bytes(qh >> 16, 16)), sixteen), d,
               minus_zero);
}

template <class Sink>
inline void decode_block(gguf::block_q5_1, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q5_1;
  const vf d = vset1(load_f16(NEXUS_FIELD(B, d))), m = vset1(load_f16(NEXUS_FIELD(B, m)));
  const std::uint32_t qh = load_u32(NEXUS_FIELD(B, qh));
  const __m128i q = load16(NEXUS_FIELD(B, qs));
  emit16<false>(s, off, _mm_or_si128(low_nibbles(q), bits_to_bytes(qh, 16)), d, m);
  emit16<false>(s, off + 16, _mm_or_si128(high_nibbles(q), bits_to_bytes(qh >> 16, 16)), d, m);
}

template <class Sink>
inline void decode_block(gguf::block_q8_0, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q8_0;
  const vf d = vset1(load_f16(NEXUS_FIELD(B, d))), minus_zero = vset1(-0.0f);
  emit16<true>(s, off, load16(NEXUS_FIELD(B, qs)), d, minus_zero);
  emit16<true>(s, off + 16, load16(NEXUS_FIELD(B, qs) + 16), d, minus_zero);
}

template <class Sink>
inline void decode_block(gguf::block_q4_k, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q4_k;
  const float d = load_f16(NEXUS_FIELD(B, d)), dmin = load_f16(NEXUS_FIELD(B, dmin));
  const auto* scales = reinterpret_cast<const std::uint8_t*>(NEXUS_FIELD(B, scales));
  const std::byte* qs = NEXUS_FIELD(B, qs);
  for (int pair = 0; pair < 4; ++pair) {  // groups 2·pair (low nibbles) and 2·pair + 1 (high) share 32 bytes
    const __m128i q0 = load16(qs + 32 * pair), q1 = load16(qs + 32 * pair + 16);
    for (int half = 0; half < 2; ++half) {
      const int g = 2 * pair + half;
      int sc, mn;
      gguf::scale_min_k4(scales, g, sc, mn);
      const vf a = vset1(d * float(sc)), b = vset1(-(dmin * float(mn)));
      emit16<false>(s, off + 32 * g, half ? high_nibbles(q0) : low_nibbles(q0), a, b);
      emit16<false>(s, off + 32 * g + 16, half ? high_nibbles(q1) : low_nibbles(q1), a, b);
    }
  }
}

template <class Sink>
inline void decode_block(gguf::block_q6_k, const std::byte* p, std::int64_t off, Sink& s) {
  using B = gguf::block_q6_k;
  const float d = load_f16(NEXUS_FIELD(B, d));
  const auto* scales = reinterpret_cast<const std::int8_t*>(NEXUS_FIELD(B, scales));
  const std::byte *ql = NEXUS_FIELD(B, ql), *qh = NEXUS_FIELD(B, qh);
  const vf minus_zero = vset1(-0.0f);
  const __m128i three = _mm_set1_epi8(3), thirty_two = _mm_set1_epi8(32);
  // Element 128 c + 32 k + l: nibble k / 2 of ql[64 c + 32 (k % 2) + l], bits 2k..2k+1 of qh[32 c + l].
  for (int c = 0; c < 2; ++c)
    for (int k = 0; k < 4; ++k)
      for (int half = 0; half < 2; ++half) {
        const int l = 16 * half, i = 128 * c + 32 * k + l;
        const __m128i lo = load16(ql + 64 * c + 32 * (k % 2) + l);
        const __m128i hi = _mm_and_si128(_mm_srl_epi16(load16(qh + 32 * c + l), _mm_cvtsi32_si128(2 * k)), three);
        const __m128i q =
            _mm_sub_epi8(_mm_or_si128(k / 2 ? high_nibbles(lo) : low_nibbles(lo), _mm_slli_epi16(hi, 4)), thirty_two);
        emit16<true>(s, off + i, q, vset1(d * float(scales[i / 16])), minus_zero);
      }
}

#undef NEXUS_FIELD

// ---- rows -----------------------------------------------------------------------------------------

template <class B>
inline constexpr bool elementwise = B::elements == 1;  // f32, f16, bf16: no blocks

template <class B>
concept simd_decodable = requires(const std::byte* p, null_sink& s) {
  decode_block(B{}, p, std::int64_t(0), s);
};

/// Element i of a row of an elementwise type, one or W at a time.
template <class B>
inline float load_one(const std::byte* row, std::int64_t i) {
  float y;
  gguf::decode_blocks<B>(row + i * std::int64_t(sizeof(B)), &y, 1);
  return y;
}
template <class B>
inline vf load_w(const std::byte* row, std::int64_t i) {
  if constexpr (std::is_same_v<B, gguf::block_f32>) return vload(reinterpret_cast<const float*>(row) + i);
  if constexpr (std::is_same_v<B, gguf::block_f16>) return vload_f16(row + 2 * i);
  if constexpr (std::is_same_v<B, gguf::block_bf16>) return vload_bf16(row + 2 * i);
}

/// Sends block b of a row (elements b·E .. b·E + E - 1) to the sink.
template <class B, class Sink>
inline void visit_block_of_row(const std::byte* row, std::int64_t b, Sink& s) {
  const std::byte* p = row + b * std::int64_t(sizeof(B));
  if constexpr (simd_decodable<B>) {
    decode_block(B{}, p, b * B::elements, s);
  } else {  // a format without a SIMD decoder: the reference decoder, then vectors
    alignas(64) float buf[B::elements];
    gguf::decode_blocks<B>(p, buf, 1);
    for (std::int64_t i = 0; i < B::elements; i += W) s.vec(b * B::elements + i, vload(buf + i));
  }
}

/// Sends every value of a row of n elements to the sink, in order.
template <class B, class Sink>
inline void visit_row(const std::byte* row, std::int64_t n, Sink& s) {
  if constexpr (elementwise<B>) {
    std::int64_t i = 0;
    for (; i + W <= n; i += W) s.vec(i, load_w<B>(row, i));
    for (; i < n; ++i) s.one(i, load_one<B>(row, i));
  } else {
    for (std::int64_t b = 0; b < n / B::elements; ++b) visit_block_of_row<B>(row, b, s);
  }
}

struct dot_sink {
  const float* x;
  vf acc = vzero();
  float tail = 0;
  void vec(std::int64_t off, vf y) { acc = vfma(y, vload(x + off), acc); }
  void one(std::int64_t off, float y) { tail += y * x[off]; }
  float total() const { return vsum(acc) + tail; }
};

struct store_sink {
  float* out;
  void vec(std::int64_t off, vf y) { vstore(out + off, y); }
  void one(std::int64_t off, float y) { out[off] = y; }
};

/// y[r] = row r · x for `rows` rows of n elements, row_bytes apart. Four rows at a time share the
/// loads of x and keep four independent accumulators in flight.
template <class B>
inline void dot_rows_of(const std::byte* w, std::size_t row_bytes, std::int64_t rows, const float* x, std::int64_t n,
                        float* y) {
  std::int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const std::byte* p[4] = {w + std::size_t(r) * row_bytes, w + std::size_t(r + 1) * row_bytes,
                             w + std::size_t(r + 2) * row_bytes, w + std::size_t(r + 3) * row_bytes};
    dot_sink s0{x}, s1{x}, s2{x}, s3{x};
    if constexpr (elementwise<B>) {
      std::int64_t i = 0;
      for (; i + W <= n; i += W) {
        s0.vec(i, load_w<B>(p[0], i));
        s1.vec(i, load_w<B>(p[1], i));
        s2.vec(i, load_w<B>(p[2], i));
        s3.vec(i, load_w<B>(p[3], i));
      }
      for (; i < n; ++i) {
        s0.one(i, load_one<B>(p[0], i));
        s1.one(i, load_one<B>(p[1], i));
        s2.one(i, load_one<B>(p[2], i));
        s3.one(i, load_one<B>(p[3], i));
      }
    } else {
      for (std::int64_t b = 0; b < n / B::elements; ++b) {
        // The next four rows, a block at a time: short rows defeat the hardware prefetcher.
        if (r + 8 <= rows) {
          const std::byte* ahead = p[0] + 4 * row_bytes + std::size_t(b) * sizeof(B);
          for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(ahead + k * row_bytes), _MM_HINT_T0);
        }
        visit_block_of_row<B>(p[0], b, s0);
        visit_block_of_row<B>(p[1], b, s1);
        visit_block_of_row<B>(p[2], b, s2);
        visit_block_of_row<B>(p[3], b, s3);
      }
    }
    y[r] = s0.total();
    y[r + 1] = s1.total();
    y[r + 2] = s2.total();
    y[r + 3] = s3.total();
  }
  for (; r < rows; ++r) {
    dot_sink s{x};
    visit_row<B>(w + std::size_t(r) * row_bytes, n, s);
    y[r] = s.total();
  }
}

/// M dot products at once, each formed exactly as dot_sink forms its one (the same fma sequence).
template <int M>
struct multi_dot_sink {
  const float* const* x;
  vf acc[M];
  float tail[M] = {};
  explicit multi_dot_sink(const float* const* xs) : x(xs) {
    for (int t = 0; t < M; ++t) acc[t] = vzero();
  }
  void vec(std::int64_t off, vf y) {
    for (int t = 0; t < M; ++t) acc[t] = vfma(y, vload(x[t] + off), acc[t]);
  }
  void one(std::int64_t off, float y) {
    for (int t = 0; t < M; ++t) tail[t] += y * x[t][off];
  }
  float total(int t) const { return vsum(acc[t]) + tail[t]; }
};

/// y[t·y_stride + r] = row r · x[t·n ..] for t < xs: each row decoded once for up to M inputs (the last
/// group padded with copies of the last input), each product equal bit for bit to dot_rows_of's.
template <class B, int M>
inline void dot_rows_multi_of(const std::byte* w, std::size_t row_bytes, std::int64_t rows, const float* x,
                              std::int64_t xs, std::int64_t n, float* y, std::int64_t y_stride) {
  for (std::int64_t t0 = 0; t0 < xs; t0 += M) {
    const float* in[M];
    for (int t = 0; t < M; ++t) in[t] = x + std::min<std::int64_t>(t0 + t, xs - 1) * n;
    for (std::int64_t r = 0; r < rows; ++r) {
      multi_dot_sink<M> s(in);
      visit_row<B>(w + std::size_t(r) * row_bytes, n, s);
      for (int t = 0; t < M && t0 + t < xs; ++t) y[(t0 + t) * y_stride + r] = s.total(t);
    }
  }
}

/// out[r·n ..] = row r, decoded, for `rows` rows: bit-identical to gguf::dequantize_row.
template <class B>
inline void decode_rows_of(const std::byte* w, std::size_t row_bytes, std::int64_t rows, std::int64_t n, float* out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    store_sink s{out + r * n};
    visit_row<B>(w + std::size_t(r) * row_bytes, n, s);
  }
}

// ---- the entry points of this instruction set ----------------------------------------------------

inline void dot_rows(gguf::tensor_type t, const std::byte* w, std::size_t row_bytes, std::int64_t rows, const float* x,
                     std::int64_t n, float* y) {
  gguf::visit_block(t, [&](auto block) { dot_rows_of<typename decltype(block)::type>(w, row_bytes, rows, x, n, y); });
}

inline void dot_rows_multi(gguf::tensor_type t, const std::byte* w, std::size_t row_bytes, std::int64_t rows,
                           const float* x, std::int64_t xs, std::int64_t n, float* y, std::int64_t y_stride) {
  gguf::visit_block(t, [&](auto block) {
    using B = typename decltype(block)::type;
    if (xs == 1) return dot_rows_of<B>(w, row_bytes, rows, x, n, y);
    if (xs <= 4) return dot_rows_multi_of<B, 4>(w, row_bytes, rows, x, xs, n, y, y_stride);
    dot_rows_multi_of<B, 8>(w, row_bytes, rows, x, xs, n, y, y_stride);
  });
}

inline void decode_rows(gguf::tensor_type t, const std::byte* w, std::size_t row_bytes, std::int64_t rows,
                        std::int64_t n, float* out) {
  gguf::visit_block(t, [&](auto block) { decode_rows_of<typename decltype(block)::type>(w, row_bytes, rows, n, out); });
}

inline float dot(const float* a, const float* b, std::int64_t n) {
  dot_sink s{b};
  visit_row<gguf::block_f32>(reinterpret_cast<const std::byte*>(a), n, s);
  return s.total();
}

/// y += a · x over n elements.
inline void axpy(float a, const float* x, float* y, std::int64_t n) {
  const vf va = vset1(a);
  std::int64_t i = 0;
  for (; i + W <= n; i += W) vstore(y + i, vfma(va, vload(x + i), vload(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}
