// Gemma-2 (Gemma2Config / modeling_gemma2, 4.57): Gemma with sandwich norms, attention and final
// logit softcaps, query_pre_attn_scalar as the attention scale, and sliding windows on even layers.
#pragma once

#include <cmath>

#include "nexus/registry/families/gemma.hpp"

namespace nexus::registry {

inline constexpr auto gemma2_tensors =
    concat(hf_embed,
           std::array<tensor_rule, 4>{{
               {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
               {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.attn_post_norm"}},
               {"model.layers.{L}.pre_feedforward_layernorm", {"layers.{L}.mlp_norm"}},
               {"model.layers.{L}.post_feedforward_layernorm", {"layers.{L}.mlp_post_norm"}},
           }},
           hf_attention, hf_gated_mlp, hf_head);

/// The attention scale `query_pre_attn_scalar**-0.5` (Gemma-2 and 3).
inline double parse_query_pre_attn_scalar(const config_reader& c, double dflt) {
  const auto scalar = c.field<double>("query_pre_attn_scalar", dflt);
  if (!scalar || *scalar <= 0) c.fail("query_pre_attn_scalar", "must be a positive number");
  return 1.0 / std::sqrt(*scalar);
}

inline descriptor parse_gemma2(const config_reader& c) {
  auto n = parse_gemma_like(c, {256000, 2304, 9216, 26, 8, 4, 8192, true}, "hidden_activation");
  n.norm.placement = norm_placement::sandwich;
  n.attention.scale = parse_query_pre_attn_scalar(c, 256.0);
  n.attention.softcap = parse_softcap(c, "attn_logit_softcapping", 50.0);
  n.head.final_softcap = parse_softcap(c, "final_logit_softcapping", 30.0);
  n.attention.sliding_window = c.field<std::int64_t>("sliding_window", 4096).value_or(0);
  if (c.has("layer_types") && !c.is_null("layer_types")) {
    n.attention.layers = parse_layer_types(c, n.dims.num_layers);
  } else {  // `"sliding_attention" if bool((i + 1) % 2)`: even layers slide
    for (std::int64_t i = 0; i < n.dims.num_layers; ++i)
      n.attention.layers.push_back((i + 1) % 2 ? layer_attention::sliding : layer_attention::full);
  }
  return finish(n, c);
}

inline constexpr std::array<tensor_rule, 4> gguf_sandwich_norms{{
    {"blk.{L}.attn_norm", {"layers.{L}.attn_norm"}, tensor_layout::plus_one},
    {"blk.{L}.post_attention_norm", {"layers.{L}.attn_post_norm"}, tensor_layout::plus_one},
    {"blk.{L}.ffn_norm", {"layers.{L}.mlp_norm"}, tensor_layout::plus_one},
    {"blk.{L}.post_ffw_norm", {"layers.{L}.mlp_post_norm"}, tensor_layout::plus_one},
}};
inline constexpr auto gemma2_gguf_tensors =
    concat(gguf_embed, gguf_sandwich_norms, gguf_attention, gguf_gated_mlp, gguf_gemma_head);
// query_pre_attn_scalar is not in GGUF: Gemma2Config's default (256) applies, as in transformers (llama.cpp uses
// head_dim instead; the two agree for Gemma-2 2B/9B). The softcaps are read as llama.cpp writes them;
// transformers 5 maps neither and keeps its defaults (50, 30).
inline constexpr auto gemma2_gguf_keys =
    concat_keys(gemma_gguf_keys, std::array<gguf_key, 3>{{
                                     {"attention.sliding_window", "sliding_window"},
                                     {"attn_logit_softcapping", "attn_logit_softcapping"},
                                     {"final_logit_softcapping", "final_logit_softcapping"},
                                 }});
inline constexpr gguf_format gemma2_gguf{"gemma2", gemma2_gguf_keys, gemma2_gguf_tensors};

inline constexpr family gemma2_family{"gemma2", parse_gemma2, gemma2_tensors, "model.", llama_ignored,
                                      {},       {},           &gemma2_gguf};

}  // namespace nexus::registry
