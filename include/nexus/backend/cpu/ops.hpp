// CPU building blocks on fp32 activations: norms, rotary embedding, causal attention (linear layers:
// nexus/backend/cpu/linear.hpp). Each rule comes from nexus/math; these only loop over rows and heads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "nexus/arch/rope.hpp"
#include "nexus/backend/cpu/kernels.hpp"
#include "nexus/core/thread_pool.hpp"
#include "nexus/math/elementwise.hpp"
#include "nexus/math/norm.hpp"
#include "nexus/model/model.hpp"
#include "nexus/model/weights.hpp"

namespace nexus::cpu {

/// Normalises each of `rows` vectors of `width` in place (the row step: nexus/math/norm.hpp).
template <norm_kind Kind>
void normalize(float* x, std::int64_t rows, std::int64_t width, const math::norm_params& p) {
  for (std::int64_t r = 0; r < rows; ++r) math::normalize_row<Kind>(x + r * width, width, p);
}

/// cos/sin tables [positions, rotary_dim / 2] for the given positions, in fp32 as transformers
/// computes them (angle = fp32(inv_freq) · position, then × attention_factor).
struct rope_table {
  std::int64_t half = 0;
  std::vector<float> cos, sin;
};

inline rope_table make_rope_table(const position_desc& p, std::span<const std::int64_t> positions,
                                  std::int64_t seq_len) {
  rope_table t;
  t.half = p.rotary_dim / 2;
  const auto inv = rope_inv_freq(p, seq_len);
  const float factor = float(p.scaling.attention_factor);
  const auto count = std::int64_t(positions.size());
  t.cos.resize(std::size_t(count * t.half));
  t.sin.resize(std::size_t(count * t.half));
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t j = 0; j < t.half; ++j)
      math::rope_cos_sin(float(inv[std::size_t(j)]), positions[std::size_t(i)], factor,
                         t.cos[std::size_t(i * t.half + j)], t.sin[std::size_t(i * t.half + j)]);
  return t;
}

/// The table for positions first..first+count-1.
inline rope_table make_rope_table(const position_desc& p, std::int64_t first, std::int64_t count,
                                  std::int64_t seq_len) {
  std::vector<std::int64_t> positions(static_cast<std::size_t>(count));
  std::iota(positions.begin(), positions.end(), first);
  return make_rope_table(p, positions, seq_len);
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

/// Attention of `rows` new queries over cached keys, one task per (query, head): query r sits at
/// position pos(r) and reads the key of position j (0..pos(r)) from cache slot slot(r, j).
/// q: [rows, heads·hd]; k, v: [slots, kv_heads·hd]; out: [rows, heads·hd].
template <class Position, class Slot>
void attend_slots(const float* q, std::int64_t rows, Position&& pos_of, Slot&& slot, const float* k, const float* v,
                  const descriptor& n, bool sliding, float* out, thread_pool& pool, const kernel_table& kt) {
  const auto& d = n.dims;
  const std::int64_t hd = d.head_dim, group = d.num_heads / d.num_kv_heads, kv_width = d.num_kv_heads * hd;
  const float scale = float(n.attention.scale), cap = float(n.attention.softcap);
  pool.parallel_for(rows * d.num_heads, [&](std::int64_t task) {
    const std::int64_t r = task / d.num_heads, h = task % d.num_heads, pos = pos_of(r);
    const std::int64_t lo = sliding ? std::max<std::int64_t>(0, pos - n.attention.sliding_window + 1) : 0;
    thread_local std::vector<float> probs;  // grows to the longest context once
    if (std::int64_t(probs.size()) < pos + 1) probs.resize(std::size_t(pos + 1));
    float* p = probs.data();
    const float* qh = q + (r * d.num_heads + h) * hd;
    const std::int64_t g = h / group;
    float max = -INFINITY;
    for (std::int64_t j = lo; j <= pos; ++j) {
      const float s = math::softcap(kt.dot(qh, k + slot(r, j) * kv_width + g * hd, hd) * scale, cap);
      p[j] = s;
      max = std::max(max, s);
    }
    float sum = 0;
    for (std::int64_t j = lo; j <= pos; ++j) sum += p[j] = std::exp(p[j] - max);
    float* o = out + (r * d.num_heads + h) * hd;
    std::fill(o, o + hd, 0.0f);
    for (std::int64_t j = lo; j <= pos; ++j) kt.axpy(p[j] / sum, v + slot(r, j) * kv_width + g * hd, o, hd);
  });
}

/// Causal attention of `rows` new queries (positions first..) over the cache's keys 0..first+rows-1.
inline void attend(const float* q, std::int64_t rows, std::int64_t first, const float* k, const float* v,
                   const descriptor& n, bool sliding, float* out, thread_pool& pool,
                   const kernel_table& kt = kernels()) {
  attend_slots(
      q, rows, [&](std::int64_t r) { return first + r; }, [](std::int64_t, std::int64_t j) { return j; }, k, v, n,
      sliding, out, pool, kt);
}

/// Attention of the new tokens of a tree (forward_options::tree): query r, at slot first + r and
/// position tree[r].size(), over the slots tree[r] and its own.
inline void attend_tree(const float* q, std::int64_t first, token_tree tree, const float* k, const float* v,
                        const descriptor& n, bool sliding, float* out, thread_pool& pool,
                        const kernel_table& kt = kernels()) {
  attend_slots(
      q, std::int64_t(tree.size()), [&](std::int64_t r) { return std::int64_t(tree[std::size_t(r)].size()); },
      [&](std::int64_t r, std::int64_t j) {
        const auto& c = tree[std::size_t(r)];
        return j < std::int64_t(c.size()) ? c[std::size_t(j)] : first + r;
      },
      k, v, n, sliding, out, pool, kt);
}

}  // namespace nexus::cpu
