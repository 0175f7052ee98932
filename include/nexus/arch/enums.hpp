// The shape-critical choices of an architecture, as plain enums with no dependencies, so that
// CUDA kernels and the descriptor share them. Their printable names live in descriptor.hpp.
#pragma once

#include <cstdint>

namespace nexus {

// ---- shape-critical choices (future compile-time traits) ---------------------------------------

enum class norm_kind : std::uint8_t {
  rms,               // x / sqrt(mean(x²) + eps) · w
  layer,             // (x - mean) / sqrt(var + eps) · w + b
  layer_no_bias,     // LayerNorm with weight, without bias
  layer_no_affine,   // parameter-free LayerNorm
};
enum class norm_placement : std::uint8_t {
  pre,       // x + f(norm(x))                 (Llama, GPT-2, ...)
  post,      // x + norm(f(x))                 (OLMo-2)
  sandwich,  // x + post_norm(f(pre_norm(x)))  (Gemma-2)
};
enum class qk_norm : std::uint8_t {
  none,
  per_head,    // one norm over head_dim, shared by all heads (Qwen-3, Phi qk_layernorm)
  full_width,  // one norm over all heads' concatenation (OLMo-2)
};
enum class position_kind : std::uint8_t { rope, alibi, learned, none };
enum class rope_style : std::uint8_t {
  neox,         // rotate halves: (x[i], x[i + d/2]) pairs
  interleaved,  // rotate neighbours: (x[2i], x[2i + 1]) pairs
};
enum class rope_scaling : std::uint8_t { none, linear, dynamic, yarn, llama3, longrope };
enum class activation : std::uint8_t {
  silu,
  gelu,       // exact, erf
  gelu_tanh,  // tanh approximation ("gelu_new", "gelu_pytorch_tanh", "gelu_fast" differ only in rounding)
  relu,
};
enum class residual_form : std::uint8_t {
  sequential,         // h = x + attn(norm1(x)); out = h + mlp(norm2(h))
  parallel_one_norm,  // out = x + attn(norm(x)) + mlp(norm(x))            (Phi)
  parallel_two_norms, // out = x + attn(norm1(x)) + mlp(norm2(x))          (GPT-NeoX)
};
enum class layer_attention : std::uint8_t { full, sliding };

/// Which norms a layer has, from the placement and the residual form: the one rule that the
/// canonical tensor list, the CPU model and the CUDA runner all follow.
struct layer_norms {
  bool attn, mlp, attn_post, mlp_post;
};
constexpr layer_norms norms_of(norm_placement placement, residual_form residual) {
  const bool pre = placement != norm_placement::post, post = placement != norm_placement::pre;
  return {pre, pre && residual != residual_form::parallel_one_norm, post, post};
}

}  // namespace nexus
