// GLM-4 (GlmConfig / modeling_glm, 4.57): fused gate_up_proj, interleaved partial rotary (0.5),
// q/k/v biases by default, head_dim 128 by default.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline constexpr auto glm_tensors = concat(
    hf_embed,
    std::array<tensor_rule, 2>{{
        {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
        {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.mlp_norm"}},
    }},
    hf_attention,
    std::array<tensor_rule, 2>{{
        {"model.layers.{L}.mlp.gate_up_proj", {"layers.{L}.mlp.gate", "layers.{L}.mlp.up"}, tensor_layout::fused_rows},
        {"model.layers.{L}.mlp.down_proj", {"layers.{L}.mlp.down"}},
    }},
    hf_head);

inline descriptor parse_glm(const config_reader& c) {
  auto n = parse_llama_like(c, {151552, 4096, 13696, 40, 32, 2, 131072});
  n.norm.eps = c.get<double>("rms_norm_eps", 1.5625e-07);
  n.dims.head_dim = c.get<std::int64_t>("head_dim", 128);
  n.position.style = rope_style::interleaved;
  n.position.partial_rotary = c.get<double>("partial_rotary_factor", 0.5);
  n.attention.qkv_bias = c.get<bool>("attention_bias", true);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family glm_family{"glm", parse_glm, glm_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
