// StarCoder2 (Starcoder2Config / modeling_starcoder2, 4.57): LayerNorm with bias, a plain MLP
// (c_fc, c_proj) with gelu-tanh, biases on every projection (use_bias), tied embeddings, and an
// optional window on every layer.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline constexpr auto starcoder2_tensors =
    concat(hf_embed,
           std::array<tensor_rule, 2>{{
               {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
               {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.mlp_norm"}},
           }},
           hf_attention,
           std::array<tensor_rule, 2>{{
               {"model.layers.{L}.mlp.c_fc", {"layers.{L}.mlp.up"}},
               {"model.layers.{L}.mlp.c_proj", {"layers.{L}.mlp.down"}},
           }},
           hf_head);

inline descriptor parse_starcoder2(const config_reader& c) {
  auto n = parse_llama_like(c, {49152, 3072, 12288, 30, 24, 2, 4096, true});
  n.norm = {norm_kind::layer, c.get<double>("norm_epsilon", 1e-5), false, norm_placement::pre, qk_norm::none};
  const bool bias = c.get<bool>("use_bias", true);
  n.mlp = {false, parse_activation(c, "hidden_act", "gelu_pytorch_tanh"), bias};
  n.attention.qkv_bias = n.attention.o_bias = bias;
  n.attention.sliding_window = c.get<std::int64_t>("sliding_window", 0);  // None by default; every layer
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return finish(n, c);
}

inline constexpr family starcoder2_family{"starcoder2", parse_starcoder2, starcoder2_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
