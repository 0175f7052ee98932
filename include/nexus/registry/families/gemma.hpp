// Gemma (GemmaConfig / modeling_gemma, 4.57): Llama with (1 + w) RMS norms, embeddings scaled by
// sqrt(hidden_size), tied embeddings and gelu-tanh by default.
#pragma once

#include <cmath>

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

/// Fields Gemma and Gemma-2 share; `act_key` is the one their modeling reads.
inline descriptor parse_gemma_like(const config_reader& c, const llama_like_defaults& def, const std::string& act_key) {
  auto n = parse_llama_like(c, def);
  // No None fallback in GemmaConfig: a null kv-head count or head_dim breaks transformers too.
  if (c.is_null("num_key_value_heads")) c.fail("num_key_value_heads", "must not be null");
  n.dims.head_dim = c.field<std::int64_t>("head_dim", 256).value_or(0);
  n.norm.unit_offset = true;
  n.mlp.act = parse_activation(c, act_key, "gelu_pytorch_tanh");
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.embedding.scale = std::sqrt(double(n.dims.hidden_size));
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return n;
}

inline descriptor parse_gemma(const config_reader& c) {
  // modeling_gemma uses ACT2FN[config.hidden_act]; `hidden_activation` is stored and ignored.
  return finish(parse_gemma_like(c, {256000, 3072, 24576, 28, 16, 16, 8192, true}, "hidden_act"), c);
}

inline constexpr family gemma_family{"gemma", parse_gemma, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
