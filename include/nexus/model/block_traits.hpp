// Compile-time traits of a block: the shape-critical choices of a descriptor, as one structural
// value usable as a template argument. `supported_blocks` is the one list of instantiations Nexus
// ships; the CPU model and the CUDA kernels are both instantiated from it. No dependencies beyond
// the enums, so CUDA translation units include it cheaply.
#pragma once

#include <array>

#include "nexus/arch/enums.hpp"

namespace nexus {

/// Every trait once: X(type, member, the descriptor field it comes from, its value in a descriptor
/// `n`). The struct below, traits_of, the printout and the closest-instantiation diff
/// (model/traits.hpp) are all generated from this list.
#define NEXUS_BLOCK_TRAITS(X)                                                                                         \
  X(norm_kind, norm, "norm.kind", n.norm.kind)                                                                        \
  X(norm_placement, placement, "norm.placement", n.norm.placement)                                                    \
  X(position_kind, position, "position.kind", n.position.kind)                                                        \
  /* rope style is fixed to neox where positions are not rotary: one instantiation for those */                       \
  X(rope_style, rope, "position.style", n.position.kind == position_kind::rope ? n.position.style : rope_style::neox) \
  X(bool, gated, "mlp.gated", n.mlp.gated)                                                                            \
  X(activation, act, "mlp.act", n.mlp.act)                                                                            \
  X(residual_form, residual, "residual", n.residual)

struct block_traits {
#define NEXUS_TRAIT_MEMBER_(type, member, ...) type member;
  NEXUS_BLOCK_TRAITS(NEXUS_TRAIT_MEMBER_)
#undef NEXUS_TRAIT_MEMBER_

  constexpr bool operator==(const block_traits&) const = default;
};

// clang-format off
/// Every instantiation Nexus ships, and the families that need it.
inline constexpr std::array supported_blocks{
  block_traits{norm_kind::rms,   norm_placement::pre,      position_kind::rope,    rope_style::neox, true,  activation::silu,      residual_form::sequential},          // llama mistral qwen2 qwen3 phi3 granite smollm3 seed_oss mixtral qwen2_moe qwen3_moe olmoe granitemoe
  block_traits{norm_kind::rms,   norm_placement::pre,      position_kind::rope,    rope_style::neox, true,  activation::gelu_tanh, residual_form::sequential},          // gemma
  block_traits{norm_kind::rms,   norm_placement::sandwich, position_kind::rope,    rope_style::neox, true,  activation::gelu_tanh, residual_form::sequential},          // gemma2 gemma3_text (gemma3)
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, false, activation::gelu_tanh, residual_form::parallel_one_norm},   // phi
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::learned, rope_style::neox, false, activation::gelu_tanh, residual_form::sequential},          // gpt2
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::learned, rope_style::neox, false, activation::gelu,      residual_form::sequential},          // gpt2 (activation_function gelu)
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, false, activation::gelu,      residual_form::parallel_two_norms},  // gpt_neox falcon (new architecture)
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, false, activation::gelu,      residual_form::sequential},          // gpt_neox use_parallel_residual=false, falcon parallel_attn=false
  block_traits{norm_kind::layer_no_affine, norm_placement::pre, position_kind::rope, rope_style::neox, true, activation::silu,      residual_form::sequential},          // olmo
  block_traits{norm_kind::rms,   norm_placement::post,     position_kind::rope,    rope_style::neox, true,  activation::silu,      residual_form::sequential},          // olmo2 olmo3
  block_traits{norm_kind::layer_no_bias, norm_placement::pre, position_kind::rope, rope_style::interleaved, true, activation::silu, residual_form::parallel_one_norm}, // cohere cohere2
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, false, activation::gelu_tanh, residual_form::sequential},          // starcoder2
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, true,  activation::silu,      residual_form::sequential},          // stablelm
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, true,  activation::silu,      residual_form::parallel_one_norm},   // stablelm use_parallel_residual
  block_traits{norm_kind::rms,   norm_placement::pre,      position_kind::rope,    rope_style::interleaved, true, activation::silu, residual_form::sequential},         // helium glm
  block_traits{norm_kind::layer, norm_placement::pre,      position_kind::rope,    rope_style::neox, false, activation::gelu,      residual_form::parallel_one_norm},   // falcon (old architecture, parallel_attn)
};
// clang-format on

}  // namespace nexus
