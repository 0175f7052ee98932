// StableLM (StableLmConfig / modeling_stablelm, 4.57): LayerNorm with bias, partial rotary (0.25),
// optional q/k/v biases, and optionally attention and MLP in parallel behind the one input norm
// (use_parallel_residual: no post_attention_layernorm). Its qk_layernorm has one LayerNorm per
// head, each with its own weights: not a trait Nexus has, refused by name.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline descriptor parse_stablelm(const config_reader& c) {
  if (c.get<bool>("qk_layernorm", false))
    c.unsupported("qk_layernorm", "true", "false (one norm per head with its own weights is not a trait)");
  auto n = parse_llama_like(c, {50304, 2560, 6912, 32, 32, 32, 4096});
  n.norm = {norm_kind::layer, c.get<double>("layer_norm_eps", 1e-5), false, norm_placement::pre, qk_norm::none};
  n.residual =
      c.get<bool>("use_parallel_residual", false) ? residual_form::parallel_one_norm : residual_form::sequential;
  n.position.partial_rotary = c.get<double>("partial_rotary_factor", 0.25);
  n.attention.qkv_bias = c.get<bool>("use_qkv_bias", false);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return finish(n, c);
}

inline constexpr family stablelm_family{"stablelm", parse_stablelm, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
