// Per-element math shared by the CPU reference and the CUDA kernels: activations, softcap, the
// RoPE rotation. One definition, so the backends cannot drift apart; `NEXUS_HD` makes each
// function callable from device code when compiled by nvcc.
#pragma once

#include <cmath>

#include "nexus/arch/enums.hpp"

#if defined(__CUDACC__)
#define NEXUS_HD __host__ __device__ __forceinline__
#else
#define NEXUS_HD inline
#endif

namespace nexus::math {

// ---- scalar functions in the precision of their argument: fp32 in the models and kernels, fp64 in
// the bridges' gradient checks (nexus/fusion/bridges/bridge.hpp). One overload per type, callable on the device.

NEXUS_HD float exp_of(float x) { return ::expf(x); }
NEXUS_HD double exp_of(double x) { return ::exp(x); }
NEXUS_HD float erf_of(float x) { return ::erff(x); }
NEXUS_HD double erf_of(double x) { return ::erf(x); }
NEXUS_HD float tanh_of(float x) { return ::tanhf(x); }
NEXUS_HD double tanh_of(double x) { return ::tanh(x); }
NEXUS_HD float sqrt_of(float x) { return ::sqrtf(x); }
NEXUS_HD double sqrt_of(double x) { return ::sqrt(x); }

// ---- activations: one function per value of NEXUS_ACTIVATIONS, named like it, and its derivative
// (name_grad) beside it, so training (bridges, CPU and CUDA) uses the same rule as the forward pass

template <class S>
NEXUS_HD S silu(S x) {
  return x / (S(1) + exp_of(-x));
}
template <class S>
NEXUS_HD S silu_grad(S x) {
  const S s = S(1) / (S(1) + exp_of(-x));
  return s * (S(1) + x * (S(1) - s));
}
/// Exact gelu, with erf.
template <class S>
NEXUS_HD S gelu(S x) {
  return S(0.5) * x * (S(1) + erf_of(x * S(0.70710678118654752)));
}
/// d gelu / dx = Φ(x) + x φ(x).
template <class S>
NEXUS_HD S gelu_grad(S x) {
  const S cdf = S(0.5) * (S(1) + erf_of(x * S(0.70710678118654752)));
  return cdf + x * S(0.39894228040143268) * exp_of(S(-0.5) * x * x);
}
/// tanh approximation: transformers' gelu_new, gelu_pytorch_tanh and gelu_fast.
template <class S>
NEXUS_HD S gelu_tanh(S x) {
  return S(0.5) * x * (S(1) + tanh_of(S(0.79788456080286536) * (x + S(0.044715) * x * x * x)));
}
template <class S>
NEXUS_HD S gelu_tanh_grad(S x) {
  const S c = S(0.79788456080286536), t = tanh_of(c * (x + S(0.044715) * x * x * x));
  return S(0.5) * (S(1) + t) + S(0.5) * x * (S(1) - t * t) * c * (S(1) + S(3 * 0.044715) * x * x);
}
template <class S>
NEXUS_HD S relu(S x) {
  return x > S(0) ? x : S(0);
}
template <class S>
NEXUS_HD S relu_grad(S x) {
  return x > S(0) ? S(1) : S(0);
}

/// The activation Act, dispatched at compile time from the activation list: a value without a
/// function of its name does not compile.
template <activation Act, class S>
NEXUS_HD S activate(S x) {
#define NEXUS_ACTIVATE_(name, ...)                       \
  if constexpr (Act == activation::name) return name(x); \
  else
  NEXUS_ACTIVATIONS(NEXUS_ACTIVATE_)
#undef NEXUS_ACTIVATE_
  static_assert(Act != Act, "an activation without a formula in nexus/math/elementwise.hpp");
}

/// The derivative of activation Act at x (name_grad above).
template <activation Act, class S>
NEXUS_HD S activate_grad(S x) {
#define NEXUS_ACTIVATE_GRAD_(name, ...)                         \
  if constexpr (Act == activation::name) return name##_grad(x); \
  else
  NEXUS_ACTIVATIONS(NEXUS_ACTIVATE_GRAD_)
#undef NEXUS_ACTIVATE_GRAD_
  static_assert(Act != Act, "an activation without a derivative in nexus/math/elementwise.hpp");
}

// ---- caps and scales -----------------------------------------------------------------------------

/// tanh(x / cap) · cap, as Gemma-2 applies to attention scores and final logits; cap 0: none.
template <class S>
NEXUS_HD S softcap(S x, S cap) {
  return cap > S(0) ? tanh_of(x / cap) * cap : x;
}

/// A logit as the head returns it: × logit_scale (Cohere), then the final softcap (Gemma-2).
template <class S>
NEXUS_HD S finish_logit(S x, S scale, S cap) {
  return softcap(scale != S(1) ? x * scale : x, cap);
}
/// d finish_logit / dx from its output y: scale · (1 − (y / cap)²), or scale without a cap.
template <class S>
NEXUS_HD S finish_logit_grad(S y, S scale, S cap) {
  return cap > S(0) ? scale * (S(1) - (y / cap) * (y / cap)) : scale;
}

// ---- RoPE ----------------------------------------------------------------------------------------

/// cos and sin of position `pos` for one inverse frequency, in fp32 as transformers computes them
/// (angle = fp32(inv_freq) · position), each × attention_factor.
NEXUS_HD void rope_cos_sin(float inv_freq, long long pos, float attention_factor, float& c, float& s) {
  const float angle = inv_freq * float(pos);
  c = ::cosf(angle) * attention_factor;
  s = ::sinf(angle) * attention_factor;
}

/// Rotates the pair (a, b) by the angle whose cosine and sine are given:
/// (a·cos − b·sin, b·cos + a·sin).
NEXUS_HD void rotate(float& a, float& b, float cos, float sin) {
  const float x = a, y = b;
  a = x * cos - y * sin;
  b = y * cos + x * sin;
}

/// Rotates pair j of one head (`half` = rotary_dim / 2 pairs): NeoX style pairs (j, j + half),
/// interleaved (2j, 2j + 1).
template <rope_style Style>
NEXUS_HD void rotate_pair(float* head, long long j, long long half, float cos, float sin) {
  switch (Style) {
    case rope_style::neox: rotate(head[j], head[j + half], cos, sin); return;
    case rope_style::interleaved: rotate(head[2 * j], head[2 * j + 1], cos, sin); return;
  }
}

}  // namespace nexus::math
