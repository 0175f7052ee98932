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

NEXUS_HD float silu(float x) { return x / (1.0f + ::expf(-x)); }
NEXUS_HD float gelu_erf(float x) { return 0.5f * x * (1.0f + ::erff(x * 0.70710678118654752f)); }
/// tanh approximation: transformers' gelu_new, gelu_pytorch_tanh and gelu_fast.
NEXUS_HD float gelu_tanh(float x) {
  return 0.5f * x * (1.0f + ::tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
NEXUS_HD float relu(float x) { return x > 0.0f ? x : 0.0f; }

template <activation Act>
NEXUS_HD float activate(float x) {
  if constexpr (Act == activation::silu) return silu(x);
  else if constexpr (Act == activation::gelu) return gelu_erf(x);
  else if constexpr (Act == activation::gelu_tanh) return gelu_tanh(x);
  else return relu(x);
}

/// The affine step of every norm: y · w (Gemma: y · (1 + w)) + b, an absent w or b skipped.
NEXUS_HD float norm_affine(float y, const float* w, const float* b, long long i, bool unit_offset) {
  if (w) y *= unit_offset ? 1.0f + w[i] : w[i];
  if (b) y += b[i];
  return y;
}

/// tanh(x / cap) · cap, as Gemma-2 applies to attention scores and final logits.
NEXUS_HD float softcap(float x, float cap) { return ::tanhf(x / cap) * cap; }

/// Rotates the pair (a, b) by the angle whose cosine and sine are given:
/// (a·cos − b·sin, b·cos + a·sin). NeoX style pairs (i, i + d/2), interleaved (2i, 2i + 1).
NEXUS_HD void rotate(float& a, float& b, float cos, float sin) {
  const float x = a, y = b;
  a = x * cos - y * sin;
  b = y * cos + x * sin;
}

}  // namespace nexus::math
