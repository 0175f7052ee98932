// Granite (GraniteConfig / modeling_granite, 4.57): Llama with four multipliers: embeddings ×
// embedding_multiplier, attention scores × attention_multiplier (instead of head_dim^-0.5),
// attention and MLP outputs × residual_multiplier before the residual add, logits / logits_scaling.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

/// The multipliers Granite and GraniteMoE share.
inline void parse_granite_multipliers(const config_reader& c, descriptor& n) {
  n.embedding.scale = c.get<double>("embedding_multiplier", 1.0);
  n.attention.scale = c.get<double>("attention_multiplier", 1.0);
  if (n.attention.scale == 0) c.fail("attention_multiplier", "must not be 0");
  n.residual_scale = c.get<double>("residual_multiplier", 1.0);
  const double logits_scaling = c.get<double>("logits_scaling", 1.0);
  if (logits_scaling == 0) c.fail("logits_scaling", "must not be 0 (the logits are divided by it)");
  n.head.logit_scale = 1.0 / logits_scaling;
}

inline descriptor parse_granite(const config_reader& c) {
  auto n = parse_llama_like(c, {32000, 4096, 11008, 32, 32, std::nullopt, 2048});
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.mlp.bias = c.get<bool>("mlp_bias", false);
  parse_granite_multipliers(c, n);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family granite_family{"granite", parse_granite, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
