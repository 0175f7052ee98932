// OLMo-3 (Olmo3Config / modeling_olmo3, 4.57): OLMo-2's block (RMS norms after attention and MLP,
// full-width qk-norm) with sliding-window layers (layer_types; by default three of every four) that
// rotate with default RoPE while the full-attention layers take rope_scaling; or, as transformers 5 saves it,
// rope_parameters per layer type.
#pragma once

#include "nexus/registry/families/olmo2.hpp"

namespace nexus::registry {

inline descriptor parse_olmo3(const config_reader& c) {
  require_rope_type_beside_type(c);  // Olmo3Config runs the generic rope_config_validation, not OLMo's own
  auto n = parse_llama_like(c, {50304, 4096, 11008, 32, 32, std::nullopt, 2048});
  n.norm = {norm_kind::rms, c.get<double>("rms_norm_eps", 1e-5), false, norm_placement::post, qk_norm::full_width};
  n.dims.head_dim = c.field<std::int64_t>("head_dim", n.dims.head_dim).value_or(0);  // getattr in modeling
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  // `config.sliding_window if attention_type == "sliding_attention" else None`: null means no window anywhere
  n.attention.sliding_window = c.field<std::int64_t>("sliding_window", 4096).value_or(0);
  if (c.has("layer_types") && !c.is_null("layer_types")) {
    n.attention.layers = parse_layer_types(c, n.dims.num_layers);
  } else {  // `"sliding_attention" if (i + 1) % 4 != 0 else "full_attention"`
    for (std::int64_t i = 0; i < n.dims.num_layers; ++i)
      n.attention.layers.push_back((i + 1) % 4 ? layer_attention::sliding : layer_attention::full);
  }
  if (c.has("rope_parameters") && is_per_layer_type_rope(c.json().at("rope_parameters"))) {
    // transformers 5's spelling: each kind of layer's settings as written (its conversion of a 4.x config gives the
    // sliding layers the class's default base, 500000, where 4.x rotated them with rope_theta)
    n.position.theta = 500'000.0;
    parse_per_layer_type_rope(c, n);
    auto& p = n.position;
    if (p.sliding.theta == p.theta && p.sliding.scaling == p.scaling) p.sliding = {};  // one rope for every layer
  } else {
    n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
    // rotary_embs["sliding_attention"] is built with rope_type="default": the same base, never scaled
    if (n.position.scaling.type != rope_scaling::none) n.position.sliding = {n.position.theta, {}};
  }
  return finish(n, c);
}

inline constexpr family olmo3_family{"olmo3", parse_olmo3, olmo2_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
