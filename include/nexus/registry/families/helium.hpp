// Helium (HeliumConfig / modeling_helium, 4.57): Llama with interleaved RoPE (rotation of
// neighbouring pairs), head_dim 128 by default, optional q/k/v biases (o_proj never has one).
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline descriptor parse_helium(const config_reader& c) {
  auto n = parse_llama_like(c, {48000, 2560, 7040, 24, 20, 20, 4096});
  n.norm.eps = c.get<double>("rms_norm_eps", 1e-8);
  n.position.theta = c.get<double>("rope_theta", 100000.0);
  n.position.style = rope_style::interleaved;
  n.dims.head_dim = c.get<std::int64_t>("head_dim", 128);
  n.attention.qkv_bias = c.get<bool>("attention_bias", false);
  n.mlp.bias = c.get<bool>("mlp_bias", false);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family helium_family{"helium", parse_helium, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
