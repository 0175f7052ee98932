// OLMo-1 (OlmoConfig / modeling_olmo, 4.57): Llama with parameter-free LayerNorms (eps fixed at
// 1e-5 in the modeling) and optional clamping of q, k, v (clip_qkv).
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

/// OlmoConfig and Olmo2Config validate rope_scaling themselves: exactly {type, factor}, type
/// linear or dynamic, factor a float > 1. transformers 5 dropped that check (any rope type its rotary supports).
inline void check_olmo_rope_scaling(const config_reader& c) {
  if (!c.has("rope_scaling") || c.is_null("rope_scaling") || from_rope_parameters(c)) return;
  const auto rs = c.sub("rope_scaling");
  const auto type = rs.field<std::string>("type");
  const auto factor = rs.field<double>("factor");
  if (rs.json().size() != 2 || !type || (*type != "linear" && *type != "dynamic") || !factor || *factor <= 1.0)
    c.unsupported("rope_scaling", rs.json().dump(), "{\"type\": \"linear\" or \"dynamic\", \"factor\": a number > 1}");
}

inline descriptor parse_olmo(const config_reader& c) {
  check_olmo_rope_scaling(c);
  auto n = parse_llama_like(c, {50304, 4096, 11008, 32, 32, std::nullopt, 2048});
  n.norm = {norm_kind::layer_no_affine, 1e-5, false, norm_placement::pre, qk_norm::none};
  n.dims.head_dim = c.field<std::int64_t>("head_dim", n.dims.head_dim).value_or(0);  // getattr in modeling
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.attention.qkv_clip = c.get<double>("clip_qkv", 0.0);
  if (n.attention.qkv_clip < 0) c.fail("clip_qkv", "must not be negative");
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

// Norms are parameter-free: the table names none, and canonical_tensors expects none.
inline constexpr family olmo_family{"olmo", parse_olmo, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
