// The shape-critical choices of an architecture, as plain enums with no dependencies, so that
// CUDA kernels and the descriptor share them. Each is declared from one list (core/enum_table.hpp):
// the list gives the values, their printable names, and the columns that describe each value, so
// adding a value is adding one line here (plus its formula in nexus/math where it has one).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "nexus/core/enum_table.hpp"

namespace nexus {

// ---- shape-critical choices (compile-time traits) -----------------------------------------------

// X(name, subtracts the mean, has a weight, has a bias). The formula: nexus/math/norm.hpp.
#define NEXUS_NORM_KINDS(X)                                                          \
  X(rms, false, true, false)             /* x / sqrt(mean(x²) + eps) · w */        \
  X(layer, true, true, true)             /* (x - mean) / sqrt(var + eps) · w + b */ \
  X(layer_no_bias, true, true, false)    /* LayerNorm with weight, without bias */   \
  X(layer_no_affine, true, false, false) /* parameter-free LayerNorm */
enum class norm_kind : std::uint8_t { NEXUS_NORM_KINDS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(norm_kind, NEXUS_NORM_KINDS);

/// What a norm kind computes and which parameters it has: the one rule that the canonical tensor
/// list, the CPU model, the CUDA weight upload and the kernels follow.
struct norm_rule {
  bool centred, weight, bias;
};
#define NEXUS_NORM_RULE_(name, centred, weight, bias) norm_rule{centred, weight, bias},
inline constexpr std::array<norm_rule, enum_size<norm_kind>> norm_rules{NEXUS_NORM_KINDS(NEXUS_NORM_RULE_)};
#undef NEXUS_NORM_RULE_
constexpr const norm_rule& rule_of(norm_kind k) { return norm_rules[static_cast<std::size_t>(k)]; }

#define NEXUS_NORM_PLACEMENTS(X)                                       \
  X(pre)      /* x + f(norm(x))                 (Llama, GPT-2, ...) */ \
  X(post)     /* x + norm(f(x))                 (OLMo-2) */            \
  X(sandwich) /* x + post_norm(f(pre_norm(x)))  (Gemma-2) */
enum class norm_placement : std::uint8_t { NEXUS_NORM_PLACEMENTS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(norm_placement, NEXUS_NORM_PLACEMENTS);

#define NEXUS_QK_NORMS(X)                                                                    \
  X(none)                                                                                    \
  X(per_head)   /* one norm over head_dim, shared by all heads (Qwen-3, Phi qk_layernorm) */ \
  X(full_width) /* one norm over all heads' concatenation (OLMo-2) */
enum class qk_norm : std::uint8_t { NEXUS_QK_NORMS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(qk_norm, NEXUS_QK_NORMS);

#define NEXUS_POSITION_KINDS(X) X(rope) X(alibi) X(learned) X(none)
enum class position_kind : std::uint8_t { NEXUS_POSITION_KINDS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(position_kind, NEXUS_POSITION_KINDS);

#define NEXUS_ROPE_STYLES(X)                                   \
  X(neox)        /* rotate halves: (x[i], x[i + d/2]) pairs */ \
  X(interleaved) /* rotate neighbours: (x[2i], x[2i + 1]) pairs */
enum class rope_style : std::uint8_t { NEXUS_ROPE_STYLES(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(rope_style, NEXUS_ROPE_STYLES);

#define NEXUS_ROPE_SCALINGS(X) X(none) X(linear) X(dynamic) X(yarn) X(llama3) X(longrope)
enum class rope_scaling : std::uint8_t { NEXUS_ROPE_SCALINGS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(rope_scaling, NEXUS_ROPE_SCALINGS);

// X(name, the transformers ACT2FN names that mean it). The formula: nexus/math/elementwise.hpp,
// a function of the same name.
#define NEXUS_ACTIVATIONS(X)                                                                        \
  X(silu, "silu", "swish")                                                                          \
  X(gelu, "gelu")                                            /* exact, erf */                       \
  X(gelu_tanh, "gelu_new", "gelu_pytorch_tanh", "gelu_fast") /* tanh approximation (they differ  */ \
  X(relu, "relu")                                            /* only in rounding) */
enum class activation : std::uint8_t { NEXUS_ACTIVATIONS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(activation, NEXUS_ACTIVATIONS);

/// The transformers names of each activation (unused slots empty), indexed by the activation.
struct activation_names {
  activation act;
  std::array<std::string_view, 4> transformers;
};
#define NEXUS_ACTIVATION_NAMES_(name, ...) activation_names{activation::name, {__VA_ARGS__}},
inline constexpr std::array activation_names_table{NEXUS_ACTIVATIONS(NEXUS_ACTIVATION_NAMES_)};
#undef NEXUS_ACTIVATION_NAMES_

#define NEXUS_RESIDUAL_FORMS(X)                                                       \
  X(sequential)         /* h = x + attn(norm1(x)); out = h + mlp(norm2(h)) */         \
  X(parallel_one_norm)  /* out = x + attn(norm(x)) + mlp(norm(x))            (Phi) */ \
  X(parallel_two_norms) /* out = x + attn(norm1(x)) + mlp(norm2(x))          (GPT-NeoX) */
enum class residual_form : std::uint8_t { NEXUS_RESIDUAL_FORMS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(residual_form, NEXUS_RESIDUAL_FORMS);

// How a mixture-of-experts router turns its logits into expert weights.
#define NEXUS_ROUTER_ORDERS(X)                                                              \
  X(softmax_topk) /* softmax over all experts, keep the top k (Mixtral, Qwen-MoE, OLMoE) */ \
  X(topk_softmax) /* keep the top k logits, softmax over those (GraniteMoE) */
enum class router_order : std::uint8_t { NEXUS_ROUTER_ORDERS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(router_order, NEXUS_ROUTER_ORDERS);

#define NEXUS_LAYER_ATTENTIONS(X) X(full) X(sliding)
enum class layer_attention : std::uint8_t { NEXUS_LAYER_ATTENTIONS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(layer_attention, NEXUS_LAYER_ATTENTIONS);

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
