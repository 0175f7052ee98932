// The row normalisation of every norm kind, written once for the CPU reference and every kernel:
// the CPU calls it on a whole row, a kernel on each thread's (or warp's) share of a row with a
// reduction that adds the partial sums. What a kind computes comes from its line in
// NEXUS_NORM_KINDS (arch/enums.hpp).
#pragma once

#include "nexus/arch/enums.hpp"
#include "nexus/math/elementwise.hpp"

namespace nexus::math {

/// A norm's parameters: weight and bias (null where absent), eps, Gemma's (1 + w).
struct norm_params {
  const float* weight = nullptr;
  const float* bias = nullptr;
  float eps = 1e-6f;
  bool unit_offset = false;
};

/// The affine step of element i: y · w (Gemma: y · (1 + w)) + b, an absent w or b skipped.
NEXUS_HD float norm_affine(float y, const norm_params& p, long long i) {
  if (p.weight) y *= p.unit_offset ? 1.0f + p.weight[i] : p.weight[i];
  if (p.bias) y += p.bias[i];
  return y;
}

/// The identity reduction: the caller holds the whole row.
struct whole_row {
  NEXUS_HD float operator()(float partial) const { return partial; }
};

/// Normalises, in place, one row of `width` values of which the caller holds `count`: its element
/// k is v[k · step] and sits at index first + k · stride of the row. `sum` turns a partial sum into
/// the row's sum (whole_row on the CPU; a warp or block reduction in a kernel).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable  // kernels pass device-only reductions; the CPU passes whole_row
#endif
template <norm_kind Kind, class Sum>
NEXUS_HD void normalize_row(float* v, long long count, long long step, long long first, long long stride,
                            long long width, const norm_params& p, Sum sum) {
  float mean = 0;
  if constexpr (rule_of(Kind).centred) {
    float s = 0;
    for (long long k = 0; k < count; ++k) s += v[k * step];
    mean = sum(s) / float(width);
  }
  float ss = 0;
  for (long long k = 0; k < count; ++k) ss += (v[k * step] - mean) * (v[k * step] - mean);
  const float inv = 1.0f / ::sqrtf(sum(ss) / float(width) + p.eps);
  for (long long k = 0; k < count; ++k) v[k * step] = norm_affine((v[k * step] - mean) * inv, p, first + k * stride);
}

/// The whole row held by the caller (the CPU reference).
template <norm_kind Kind>
NEXUS_HD void normalize_row(float* v, long long width, const norm_params& p) {
  normalize_row<Kind>(v, width, 1, 0, 1, width, p, whole_row{});
}

}  // namespace nexus::math
