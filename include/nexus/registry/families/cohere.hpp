// Cohere / Command-R (CohereConfig / modeling_cohere, 4.57): bias-free LayerNorm, attention and
// MLP in parallel behind one norm, interleaved RoPE, logits multiplied by logit_scale, tied
// embeddings. `use_qk_norm` (one norm weight per head) is not a trait Nexus has.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline constexpr auto cohere_tensors =
    concat(hf_embed, std::array<tensor_rule, 1>{{{"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}}}},
           hf_attention, hf_gated_mlp, hf_head);

inline descriptor parse_cohere(const config_reader& c) {
  if (c.get<bool>("use_qk_norm", false))
    c.unsupported("use_qk_norm", "true", "false (per-head norm weights are not a trait)");
  auto n = parse_llama_like(c, {256000, 8192, 22528, 40, 64, std::nullopt, 8192, true});
  n.norm = {norm_kind::layer_no_bias, c.get<double>("layer_norm_eps", 1e-5), false, norm_placement::pre, qk_norm::none};
  n.residual = residual_form::parallel_one_norm;
  n.position.style = rope_style::interleaved;
  n.dims.head_dim = c.field<std::int64_t>("head_dim", n.dims.head_dim).value_or(0);  // getattr in modeling
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.head.logit_scale = c.get<double>("logit_scale", 0.0625);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family cohere_family{"cohere", parse_cohere, cohere_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
