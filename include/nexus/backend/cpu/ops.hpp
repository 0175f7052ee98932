// CPU building blocks in fp32: linear layers, norms, rotary embedding, causal attention.
// Written for exactness and clarity first; loops run over contiguous rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "nexus/arch/rope.hpp"
#include "nexus/math/elementwise.hpp"
#include "nexus/math/norm.hpp"
#include "nexus/model/weights.hpp"

namespace nexus::cpu {

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

/// y[t, o] = x[t, :] · W[o, :] + b[o] for t < rows. W is [out, in].
inline void linear(const float* x, std::int64_t rows, const tensor_f32& w, const tensor_f32* b, float* y) {
  const std::int64_t out = w.shape[0], in = w.shape[1];
  for (std::int64_t t = 0; t < rows; ++t)
    for (std::int64_t o = 0; o < out; ++o)
      y[t * out + o] = dot(x + t * in, w.data.data() + o * in, in) + (b ? b->data[std::size_t(o)] : 0.0f);
}

/// Normalises each of `rows` vectors of `width` in place (the row step: nexus/math/norm.hpp).
template <norm_kind Kind>
void normalize(float* x, std::int64_t rows, std::int64_t width, const math::norm_params& p) {
  for (std::int64_t r = 0; r < rows; ++r) math::normalize_row<Kind>(x + r * width, width, p);
}

/// cos/sin tables [positions, rotary_dim / 2] for positions first..first+count-1, in fp32 as
/// transformers computes them (angle = fp32(inv_freq) · position, then × attention_factor).
struct rope_table {
  std::int64_t half = 0;
  std::vector<float> cos, sin;
};

inline rope_table make_rope_table(const position_desc& p, std::int64_t first, std::int64_t count,
                                  std::int64_t seq_len) {
  rope_table t;
  t.half = p.rotary_dim / 2;
  const auto inv = rope_inv_freq(p, seq_len);
  const float factor = float(p.scaling.attention_factor);
  t.cos.resize(std::size_t(count * t.half));
  t.sin.resize(std::size_t(count * t.half));
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t j = 0; j < t.half; ++j)
      math::rope_cos_sin(float(inv[std::size_t(j)]), first + i, factor, t.cos[std::size_t(i * t.half + j)],
                         t.sin[std::size_t(i * t.half + j)]);
  return t;
}

/// Rotates the first rotary_dim entries of each head of x[rows, heads·head_dim].
template <rope_style Style>
void apply_rope(float* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim, const rope_table& t) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * head_dim;
      for (std::int64_t j = 0; j < t.half; ++j)
        math::rotate_pair<Style>(v, j, t.half, t.cos[std::size_t(r * t.half + j)], t.sin[std::size_t(r * t.half + j)]);
    }
}

/// Causal attention of `rows` new queries (positions first..) over the cache's keys 0..first+rows-1.
/// q: [rows, heads·hd]; k, v: [positions, kv_heads·hd]; out: [rows, heads·hd].
/// `probs` is scratch of at least first + rows floats.
inline void attend(const float* q, std::int64_t rows, std::int64_t first, const float* k, const float* v,
                   const descriptor& n, bool sliding, float* probs, float* out) {
  const auto& d = n.dims;
  const std::int64_t hd = d.head_dim, group = d.num_heads / d.num_kv_heads, kv_width = d.num_kv_heads * hd;
  const float scale = float(n.attention.scale), cap = float(n.attention.softcap);
  float* p = probs;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t pos = first + r;
    const std::int64_t lo = sliding ? std::max<std::int64_t>(0, pos - n.attention.sliding_window + 1) : 0;
    for (std::int64_t h = 0; h < d.num_heads; ++h) {
      const float* qh = q + (r * d.num_heads + h) * hd;
      const std::int64_t g = h / group;
      float max = -INFINITY;
      for (std::int64_t j = lo; j <= pos; ++j) {
        const float s = math::softcap(dot(qh, k + j * kv_width + g * hd, hd) * scale, cap);
        p[j] = s;
        max = std::max(max, s);
      }
      float sum = 0;
      for (std::int64_t j = lo; j <= pos; ++j) sum += p[j] = std::exp(p[j] - max);
      float* o = out + (r * d.num_heads + h) * hd;
      std::fill(o, o + hd, 0.0f);
      for (std::int64_t j = lo; j <= pos; ++j) {
        const float w = p[j] / sum;
        const float* vj = v + j * kv_width + g * hd;
        for (std::int64_t i = 0; i < hd; ++i) o[i] += w * vj[i];
      }
    }
  }
}

}  // namespace nexus::cpu
