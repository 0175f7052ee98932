// Qwen-2 (Qwen2Config / modeling_qwen2, 4.57): Llama with q/k/v biases and an optional sliding
// window on the layers from `max_window_layers` on (or as `layer_types` says).
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

/// What Qwen-2 and Qwen-3 share, their window rule included: `sliding_window if use_sliding_window
/// else None`; layer i slides when a window is set and i >= max_window_layers, unless layer_types
/// is given. `head_dim` absent: `head_dim_default` (nullopt: hidden / heads); null: an error, as
/// it breaks transformers too.
inline descriptor parse_qwen_like(const config_reader& c, std::optional<std::int64_t> head_dim_default,
                                  const llama_like_defaults& def = {151936, 4096, 22016, 32, 32, 32, 32768}) {
  auto n = parse_llama_like(c, def);
  n.dims.head_dim = c.field<std::int64_t>("head_dim", head_dim_default.value_or(n.dims.head_dim)).value_or(0);
  const bool use = c.get<bool>("use_sliding_window", false);
  const auto window = use ? c.field<std::int64_t>("sliding_window", 4096) : std::nullopt;
  n.attention.sliding_window = window.value_or(0);
  if (c.has("layer_types") && !c.is_null("layer_types")) {
    n.attention.layers = parse_layer_types(c, n.dims.num_layers);
  } else {
    const auto max_window_layers = c.get<std::int64_t>("max_window_layers", 28);
    for (std::int64_t i = 0; i < n.dims.num_layers; ++i)
      n.attention.layers.push_back(window && i >= max_window_layers ? layer_attention::sliding : layer_attention::full);
  }
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return n;
}

inline descriptor parse_qwen2(const config_reader& c) {
  // Qwen2Config has no head_dim, but modeling reads `getattr(config, "head_dim", hidden // heads)`.
  auto n = parse_qwen_like(c, std::nullopt);
  n.attention.qkv_bias = true;  // fixed in the modeling: q/k/v with bias, o without
  return finish(n, c);
}

// llama.cpp writes no sliding window for qwen2, and no Q/K permutation (NeoX-style rope).
inline constexpr auto qwen_gguf_tensors =
    concat(gguf_embed, gguf_pre_norms, gguf_attention, gguf_qk_norm, gguf_gated_mlp, gguf_head);
inline constexpr gguf_format qwen2_gguf{"qwen2", gguf_common_keys, qwen_gguf_tensors};

inline constexpr family qwen2_family{"qwen2", parse_qwen2, llama_tensors, "model.", llama_ignored, {}, {}, &qwen2_gguf};

}  // namespace nexus::registry
