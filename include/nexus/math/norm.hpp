// The row normalisation of every norm kind, written once for the CPU reference and every kernel:
// the CPU calls it on a whole row, a kernel on each thread's (or warp's) share of a row with a
// reduction that adds the partial sums. What a kind computes comes from its line in
// NEXUS_NORM_KINDS (arch/enums.hpp).
#pragma once

#include "nexus/arch/enums.hpp"
#include "nexus/math/elementwise.hpp"

namespace nexus::math {

/// A norm's parameters: weight and bias (null where absent), eps, Gemma's (1 + w). The scalar is fp32 in
/// the models and kernels, fp64 in the bridges' gradient checks.
template <class S>
struct basic_norm_params {
  const S* weight = nullptr;
  const S* bias = nullptr;
  S eps = S(1e-6);
  bool unit_offset = false;
};
using norm_params = basic_norm_params<float>;

/// The scale element i applies: w (Gemma: 1 + w), 1 without a weight.
template <class S>
NEXUS_HD S norm_scale(const basic_norm_params<S>& p, long long i) {
  return p.weight ? (p.unit_offset ? S(1) + p.weight[i] : p.weight[i]) : S(1);
}

/// The affine step of element i: y · w (Gemma: y · (1 + w)) + b, an absent w or b skipped.
template <class S>
NEXUS_HD S norm_affine(S y, const basic_norm_params<S>& p, long long i) {
  if (p.weight) y *= p.unit_offset ? S(1) + p.weight[i] : p.weight[i];
  if (p.bias) y += p.bias[i];
  return y;
}

/// The identity reduction: the caller holds the whole row.
struct whole_row {
  template <class S>
  NEXUS_HD S operator()(S partial) const {
    return partial;
  }
};

/// Normalises, in place, one row of `width` values of which the caller holds `count`: its element
/// k is v[k · step] and sits at index first + k · stride of the row. `sum` turns a partial sum into
/// the row's sum (whole_row on the CPU; a warp or block reduction in a kernel).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable  // kernels pass device-only reductions; the CPU passes whole_row
#endif
template <norm_kind Kind, class S, class Sum>
NEXUS_HD void normalize_row(S* v, long long count, long long step, long long first, long long stride, long long width,
                            const basic_norm_params<S>& p, Sum sum) {
  S mean = 0;
  if constexpr (rule_of(Kind).centred) {
    S s = 0;
    for (long long k = 0; k < count; ++k) s += v[k * step];
    mean = sum(s) / S(width);
  }
  S ss = 0;
  for (long long k = 0; k < count; ++k) ss += (v[k * step] - mean) * (v[k * step] - mean);
  const S inv = S(1) / sqrt_of(sum(ss) / S(width) + p.eps);
  for (long long k = 0; k < count; ++k) v[k * step] = norm_affine((v[k * step] - mean) * inv, p, first + k * stride);
}

/// The whole row held by the caller (the CPU reference).
template <norm_kind Kind, class S>
NEXUS_HD void normalize_row(S* v, long long width, const basic_norm_params<S>& p) {
  normalize_row<Kind>(v, width, 1, 0, 1, width, p, whole_row{});
}

/// The backward of normalize_row on the same share of a row: from the input x and the gradient dy of
/// the output, dx = inv · (g − mean(g) − x̂ · mean(g · x̂)) with g = dy · scale and x̂ the normalised input
/// (mean(g) only for centred kinds); dw[i] += dy · x̂ and db[i] += dy where given (null: not wanted;
/// i = first + k · stride, as in the forward). `dx` may alias `dy`.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <norm_kind Kind, class S, class Sum>
NEXUS_HD void normalize_row_backward(const S* x, const S* dy, S* dx, S* dw, S* db, long long count, long long step,
                                     long long first, long long stride, long long width, const basic_norm_params<S>& p,
                                     Sum sum) {
  S mean = 0;
  if constexpr (rule_of(Kind).centred) {
    S s = 0;
    for (long long k = 0; k < count; ++k) s += x[k * step];
    mean = sum(s) / S(width);
  }
  S ss = 0;
  for (long long k = 0; k < count; ++k) ss += (x[k * step] - mean) * (x[k * step] - mean);
  const S inv = S(1) / sqrt_of(sum(ss) / S(width) + p.eps);
  S g_sum = 0, gx_sum = 0;
  for (long long k = 0; k < count; ++k) {
    const long long i = first + k * stride;
    const S xhat = (x[k * step] - mean) * inv, g = dy[k * step] * norm_scale(p, i);
    g_sum += g;
    gx_sum += g * xhat;
  }
  const S g_mean = rule_of(Kind).centred ? sum(g_sum) / S(width) : S(0), gx_mean = sum(gx_sum) / S(width);
  for (long long k = 0; k < count; ++k) {
    const long long i = first + k * stride;
    const S xhat = (x[k * step] - mean) * inv, d = dy[k * step];
    if (rule_of(Kind).weight && dw) dw[i] += d * xhat;
    if (rule_of(Kind).bias && db) db[i] += d;
    dx[k * step] = inv * (d * norm_scale(p, i) - g_mean - xhat * gx_mean);
  }
}

/// The whole row held by the caller (the CPU reference).
template <norm_kind Kind, class S>
NEXUS_HD void normalize_row_backward(const S* x, const S* dy, S* dx, S* dw, S* db, long long width,
                                     const basic_norm_params<S>& p) {
  normalize_row_backward<Kind>(x, dy, dx, dw, db, width, 1, 0, 1, width, p, whole_row{});
}

}  // namespace nexus::math
