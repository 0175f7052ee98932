// Seed-OSS (SeedOssConfig / modeling_seed_oss, 4.57): Llama with q/k/v biases by default
// (attention_bias), an o_proj bias of its own (attention_out_bias) and head_dim 128 by default.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline descriptor parse_seed_oss(const config_reader& c) {
  auto n = parse_llama_like(c, {155136, 4096, 27648, 64, 80, 8, 524288});
  // `head_dim if head_dim is not None else hidden_size // num_attention_heads`, 128 when absent
  n.dims.head_dim = c.field<std::int64_t>("head_dim", 128).value_or(n.dims.head_dim);
  n.attention.qkv_bias = c.get<bool>("attention_bias", true);
  n.attention.o_bias = c.get<bool>("attention_out_bias", false);
  n.mlp.bias = c.get<bool>("mlp_bias", false);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return finish(n, c);
}

inline constexpr family seed_oss_family{"seed_oss", parse_seed_oss, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
