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

// ---- activations: one function per value of NEXUS_ACTIVATIONS, named like it --------------------

NEXUS_HD float silu(float x) { return x / (1.0f + ::expf(-x)); }
/// Exact gelu, with erf.
NEXUS_HD float gelu(float x) { return 0.5f * x * (1.0f + ::erff(x * 0.70710678118654752f)); }
/// tanh approximation: transformers' gelu_new, gelu_pytorch_tanh and gelu_fast.
NEXUS_HD float gelu_tanh(float x) {
  return 0.5f * x * (1.0f + ::tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
NEXUS_HD float relu(float x) { return x > 0.0f ? x : 0.0f; }

/// The activation Act, dispatched at compile time from the activation list: a value without a
/// function of its name does not compile.
template <activation Act>
NEXUS_HD float activate(float x) {
#define NEXUS_ACTIVATE_(name, ...)                       \
  if constexpr (Act == activation::name) return name(x); \
  else
  NEXUS_ACTIVATIONS(NEXUS_ACTIVATE_)
#undef NEXUS_ACTIVATE_
  static_assert(Act != Act, "an activation without a formula in nexus/math/elementwise.hpp");
}

// ---- caps and scales -----------------------------------------------------------------------------

/// tanh(x / cap) · cap, as Gemma-2 applies to attention scores and final logits; cap 0: none.
NEXUS_HD float softcap(float x, float cap) { return cap > 0.0f ? ::tanhf(x / cap) * cap : x; }

/// A logit as the head returns it: × logit_scale (Cohere), then the final softcap (Gemma-2).
NEXUS_HD float finish_logit(float x, float scale, float cap) { return softcap(scale != 1.0f ? x * scale : x, cap); }

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
