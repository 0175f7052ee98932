// Qwen-3 (Qwen3Config / modeling_qwen3, 4.57): Qwen-2 with per-head RMS qk-norm, head_dim 128 by
// default, and attention_bias on all four projections instead of fixed q/k/v biases.
#pragma once

#include "nexus/registry/families/qwen2.hpp"

namespace nexus::registry {

inline descriptor parse_qwen3(const config_reader& c) {
  auto n = parse_qwen_like(c, 128);
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.norm.qk = qk_norm::per_head;
  return finish(n, c);
}

inline constexpr family qwen3_family{"qwen3", parse_qwen3, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
