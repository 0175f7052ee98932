// Phi-1/1.5/2 (PhiConfig / modeling_phi, 4.57): parallel attention and MLP behind one shared
// LayerNorm, partial rotary, biases everywhere including lm_head, optional per-head qk LayerNorm.
#pragma once

#include "nexus/registry/common.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

inline constexpr tensor_rule phi_tensors[] = {
    {"model.embed_tokens", {"embed.tokens"}},
    {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
    {"model.layers.{L}.self_attn.q_proj", {"layers.{L}.attn.q"}},
    {"model.layers.{L}.self_attn.k_proj", {"layers.{L}.attn.k"}},
    {"model.layers.{L}.self_attn.v_proj", {"layers.{L}.attn.v"}},
    {"model.layers.{L}.self_attn.dense", {"layers.{L}.attn.o"}},
    {"model.layers.{L}.self_attn.q_layernorm", {"layers.{L}.attn.q_norm"}},
    {"model.layers.{L}.self_attn.k_layernorm", {"layers.{L}.attn.k_norm"}},
    {"model.layers.{L}.mlp.fc1", {"layers.{L}.mlp.up"}},
    {"model.layers.{L}.mlp.fc2", {"layers.{L}.mlp.down"}},
    {"model.final_layernorm", {"final_norm"}},
    {"lm_head", {"lm_head"}},
};

inline constexpr std::string_view phi_ignored[] = {".rotary_emb.inv_freq"};

inline descriptor parse_phi(const config_reader& c) {
  descriptor n;
  auto& d = n.dims;
  d.vocab_size = c.get<std::int64_t>("vocab_size", 51200);
  d.hidden_size = c.get<std::int64_t>("hidden_size", 2048);
  d.intermediate_size = c.get<std::int64_t>("intermediate_size", 8192);
  d.num_layers = c.get<std::int64_t>("num_hidden_layers", 24);
  d.num_heads = c.get<std::int64_t>("num_attention_heads", 32);
  if (d.num_heads <= 0) c.fail("num_attention_heads", "must be positive");
  d.num_kv_heads = c.get<std::int64_t>("num_key_value_heads", d.num_heads);
  d.max_positions = c.get<std::int64_t>("max_position_embeddings", 2048);
  d.head_dim = c.field<std::int64_t>("head_dim", d.hidden_size / d.num_heads).value_or(0);  // getattr in modeling
  n.norm = {norm_kind::layer, c.get<double>("layer_norm_eps", 1e-5), false, norm_placement::pre,
            c.get<bool>("qk_layernorm", false) ? qk_norm::per_head : qk_norm::none};
  n.residual = residual_form::parallel_one_norm;
  n.position.theta = c.get<double>("rope_theta", 10000.0);
  n.position.partial_rotary = c.get<double>("partial_rotary_factor", 0.5);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  n.attention.qkv_bias = n.attention.o_bias = true;
  n.mlp = {false, parse_activation(c, "hidden_act", "gelu_new"), true};
  n.embedding.tied = c.get<bool>("tie_word_embeddings", false);
  n.head.bias = true;
  return finish(n, c);
}

inline constexpr family phi_family{"phi", parse_phi, phi_tensors, "model.", phi_ignored};

}  // namespace nexus::registry
