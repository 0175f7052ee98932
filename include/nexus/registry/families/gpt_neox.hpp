// GPT-NeoX / Pythia (GPTNeoXConfig / modeling_gpt_neox, 4.57): LayerNorm, partial rotary,
// query_key_value fused and interleaved per head, parallel residual with two norms by default.
#pragma once

#include "nexus/registry/common.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

inline constexpr tensor_rule gpt_neox_tensors[] = {
    {"gpt_neox.embed_in", {"embed.tokens"}},
    {"gpt_neox.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
    {"gpt_neox.layers.{L}.post_attention_layernorm", {"layers.{L}.mlp_norm"}},
    {"gpt_neox.layers.{L}.attention.query_key_value",
     {"layers.{L}.attn.q", "layers.{L}.attn.k", "layers.{L}.attn.v"},
     tensor_layout::fused_rows_per_head},
    {"gpt_neox.layers.{L}.attention.dense", {"layers.{L}.attn.o"}},
    {"gpt_neox.layers.{L}.mlp.dense_h_to_4h", {"layers.{L}.mlp.up"}},
    {"gpt_neox.layers.{L}.mlp.dense_4h_to_h", {"layers.{L}.mlp.down"}},
    {"gpt_neox.final_layer_norm", {"final_norm"}},
    {"embed_out", {"lm_head"}},
};

// Buffers that checkpoints saved by older transformers carry.
inline constexpr std::string_view gpt_neox_ignored[] = {".attention.bias", ".attention.masked_bias",
                                                        ".rotary_emb.inv_freq"};

inline descriptor parse_gpt_neox(const config_reader& c) {
  descriptor n;
  auto& d = n.dims;
  d.vocab_size = c.get<std::int64_t>("vocab_size", 50432);
  d.hidden_size = c.get<std::int64_t>("hidden_size", 6144);
  d.num_layers = c.get<std::int64_t>("num_hidden_layers", 44);
  d.num_heads = c.get<std::int64_t>("num_attention_heads", 64);
  d.intermediate_size = c.get<std::int64_t>("intermediate_size", 24576);
  d.max_positions = c.get<std::int64_t>("max_position_embeddings", 2048);
  if (d.num_heads <= 0 || d.hidden_size % d.num_heads != 0)
    c.fail("num_attention_heads", "must divide hidden_size (the config class requires it)");
  d.num_kv_heads = d.num_heads;
  d.head_dim = d.hidden_size / d.num_heads;
  n.norm = {norm_kind::layer, c.get<double>("layer_norm_eps", 1e-5), false, norm_placement::pre, qk_norm::none};
  n.residual =
      c.get<bool>("use_parallel_residual", true) ? residual_form::parallel_two_norms : residual_form::sequential;
  // __init__ assigns rope_theta = rotary_emb_base and partial_rotary_factor = rotary_pct after
  // the **kwargs, so the legacy names win over the new ones.
  n.position.theta = c.get<double>("rotary_emb_base", 10000.0);
  n.position.partial_rotary = c.get<double>("rotary_pct", 0.25);
  // The attention ignores a "head_dim" key, but the rotary embedding reads it: it then rotates
  // int(head_dim · rotary_pct) dims with frequencies over that width.
  n.position.rotary_dim = rotary_dim_of(c.get<std::int64_t>("head_dim", d.head_dim), n.position.partial_rotary);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", true);
  n.mlp = {false, parse_activation(c, "hidden_act", "gelu"), true};
  n.embedding.tied = c.get<bool>("tie_word_embeddings", false);
  return finish(n, c);
}

inline constexpr family gpt_neox_family{"gpt_neox", parse_gpt_neox, gpt_neox_tensors, "gpt_neox.", gpt_neox_ignored};

}  // namespace nexus::registry
