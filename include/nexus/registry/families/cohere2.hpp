// Cohere 2 / Command R7B (Cohere2Config / modeling_cohere2, 4.57): Cohere's block (bias-free
// LayerNorm, attention and MLP in parallel behind one norm, interleaved RoPE, logit_scale, tied
// embeddings) with sliding-window layers (layer_types, or three of every four by the older
// sliding_window_pattern) that rotate, and full-attention layers without RoPE.
#pragma once

#include "nexus/registry/families/cohere.hpp"

namespace nexus::registry {

inline descriptor parse_cohere2(const config_reader& c) {
  require_rope_type_beside_type(c);  // Cohere2Config runs rope_config_validation
  auto n = parse_llama_like(c, {256000, 8192, 22528, 40, 64, std::nullopt, 8192, true});
  n.norm = {norm_kind::layer_no_bias, c.get<double>("layer_norm_eps", 1e-5), false, norm_placement::pre, qk_norm::none};
  n.residual = residual_form::parallel_one_norm;
  n.position.style = rope_style::interleaved;  // head_dim is always hidden_size // num_attention_heads
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.head.logit_scale = c.get<double>("logit_scale", 0.0625);
  // Cohere2Model builds a sliding-window mask for every model, and refuses a None window.
  const auto window = c.field<std::int64_t>("sliding_window", 4096);
  if (!window || *window <= 0)
    c.fail("sliding_window", "must be a positive number (transformers cannot run Cohere 2 without one)");
  n.attention.sliding_window = *window;
  if (c.has("layer_types") && !c.is_null("layer_types")) {
    n.attention.layers = parse_layer_types(c, n.dims.num_layers);
  } else {  // `"sliding_attention" if bool((i + 1) % sliding_window_pattern)`, 4 by default
    const auto pattern = c.get<std::int64_t>("sliding_window_pattern", 4);
    if (pattern <= 0) c.fail("sliding_window_pattern", "must be positive");
    for (std::int64_t i = 0; i < n.dims.num_layers; ++i)
      n.attention.layers.push_back((i + 1) % pattern ? layer_attention::sliding : layer_attention::full);
  }
  // `if self.sliding_window is not None: apply_rotary_pos_emb(...)`: only windowed layers rotate
  for (std::int64_t i = 0; i < n.dims.num_layers; ++i)
    if (n.attention.layers[std::size_t(i)] == layer_attention::full) n.position.unrotated_layers.push_back(i);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family cohere2_family{"cohere2", parse_cohere2, cohere_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
