// GPT-2 (GPT2Config / modeling_gpt2, 4.57): learned absolute positions, LayerNorm, plain MLP,
// Conv1D weights stored [in, out], fused c_attn, tied embeddings.
#pragma once

#include <cmath>

#include "nexus/registry/common.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

inline constexpr tensor_rule gpt2_tensors[] = {
    {"transformer.wte", {"embed.tokens"}},
    {"transformer.wpe", {"embed.positions"}},
    {"transformer.h.{L}.ln_1", {"layers.{L}.attn_norm"}},
    {"transformer.h.{L}.attn.c_attn",
     {"layers.{L}.attn.q", "layers.{L}.attn.k", "layers.{L}.attn.v"},
     tensor_layout::fused_cols_transposed},
    {"transformer.h.{L}.attn.c_proj", {"layers.{L}.attn.o"}, tensor_layout::transposed},
    {"transformer.h.{L}.ln_2", {"layers.{L}.mlp_norm"}},
    {"transformer.h.{L}.mlp.c_fc", {"layers.{L}.mlp.up"}, tensor_layout::transposed},
    {"transformer.h.{L}.mlp.c_proj", {"layers.{L}.mlp.down"}, tensor_layout::transposed},
    {"transformer.ln_f", {"final_norm"}},
    {"lm_head", {"lm_head"}},
};

// Causal-mask buffers that older checkpoints (openai-community/gpt2) carry.
inline constexpr std::string_view gpt2_ignored[] = {".attn.bias", ".attn.masked_bias"};

/// GPT2Config stores n_embd etc. and maps hidden_size etc. onto them (attribute_map); an alias key
/// in config.json is set after the class's own fields, so it wins.
inline std::int64_t gpt2_int(const config_reader& c, const std::string& name, const std::string& alias,
                             std::int64_t dflt) {
  return c.has(alias) ? c.require<std::int64_t>(alias) : c.get<std::int64_t>(name, dflt);
}

inline descriptor parse_gpt2(const config_reader& c) {
  if (c.get<bool>("scale_attn_by_inverse_layer_idx", false))
    c.unsupported("scale_attn_by_inverse_layer_idx", "true", "false (a per-layer attention scale is not a trait)");
  descriptor n;
  auto& d = n.dims;
  d.vocab_size = c.get<std::int64_t>("vocab_size", 50257);
  d.hidden_size = gpt2_int(c, "n_embd", "hidden_size", 768);
  d.num_layers = gpt2_int(c, "n_layer", "num_hidden_layers", 12);
  d.num_heads = gpt2_int(c, "n_head", "num_attention_heads", 12);
  d.max_positions = gpt2_int(c, "n_positions", "max_position_embeddings", 1024);
  if (d.num_heads <= 0) c.fail("n_head", "must be positive");
  d.num_kv_heads = d.num_heads;
  d.head_dim = d.hidden_size / d.num_heads;
  d.intermediate_size = c.get<std::int64_t>("n_inner", 4 * d.hidden_size);  // None: 4 * n_embd
  n.norm = {norm_kind::layer, c.get<double>("layer_norm_epsilon", 1e-5), false, norm_placement::pre, qk_norm::none};
  n.position.kind = position_kind::learned;
  n.attention.qkv_bias = n.attention.o_bias = true;
  if (!c.get<bool>("scale_attn_weights", true)) n.attention.scale = 1.0;
  n.mlp = {false, parse_activation(c, "activation_function", "gelu_new"), true};
  n.embedding.tied = c.get<bool>("tie_word_embeddings", true);
  return finish(n, c);
}

inline constexpr family gpt2_family{"gpt2", parse_gpt2, gpt2_tensors, "transformer.", gpt2_ignored};

}  // namespace nexus::registry
