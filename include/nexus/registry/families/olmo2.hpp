// OLMo-2 (Olmo2Config / modeling_olmo2, 4.57): RMS norms after attention and after the MLP
// ("post" placement, no pre-norms) and RMS qk-norm over the full width of all heads.
#pragma once

#include "nexus/registry/families/olmo.hpp"

namespace nexus::registry {

inline constexpr auto olmo2_tensors =
    concat(hf_embed,
           std::array<tensor_rule, 2>{{
               {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.attn_post_norm"}},
               {"model.layers.{L}.post_feedforward_layernorm", {"layers.{L}.mlp_post_norm"}},
           }},
           hf_attention, hf_qk_norm, hf_gated_mlp, hf_head);

inline descriptor parse_olmo2(const config_reader& c) {
  check_olmo_rope_scaling(c);
  auto n = parse_llama_like(c, {50304, 4096, 11008, 32, 32, std::nullopt, 2048});
  n.norm = {norm_kind::rms, c.get<double>("rms_norm_eps", 1e-5), false, norm_placement::post, qk_norm::full_width};
  n.dims.head_dim = c.field<std::int64_t>("head_dim", n.dims.head_dim).value_or(0);  // getattr in modeling
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family olmo2_family{"olmo2", parse_olmo2, olmo2_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
