// Qwen-3 (Qwen3Config / modeling_qwen3, 4.57): Qwen-2 with per-head RMS qk-norm, head_dim 128 by
// default, and attention_bias on all four projections instead of fixed q/k/v biases.
#pragma once

#include "nexus/registry/families/qwen2.hpp"

namespace nexus::registry {

inline descriptor parse_qwen3(const config_reader& c) {
  auto n = parse_llama_like(c, {151936, 4096, 22016, 32, 32, 32, 32768});
  n.dims.head_dim = c.field<std::int64_t>("head_dim", 128).value_or(0);  // null breaks transformers too
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.norm.qk = qk_norm::per_head;
  parse_qwen_window(c, n);
  n.position.scaling = parse_rope_scaling(c, n.dims.max_positions, rotary_dim_of(n.dims.head_dim, 1.0),
                                          rope_type_key::type_first, c.field<std::int64_t>("original_max_position_embeddings"));
  return finish(n, c);
}

inline constexpr family qwen3_family{"qwen3", parse_qwen3, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
