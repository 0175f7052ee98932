// Falcon (FalconConfig / modeling_falcon, 4.57): LayerNorm with bias, plain gelu MLP, one fused
// query_key_value grouped by kv head ([its query heads; k; v] per group, which covers the old
// architecture's multi-query [q; k; v] and per-head [q_h; k_h; v_h] layouts too), optional biases.
// The old decoder architecture runs attention and MLP in parallel behind input_layernorm
// (parallel_attn) or one after the other; the new one in parallel behind ln_attn and ln_mlp (or
// one input_layernorm when num_ln_in_parallel_attn is 1). ALiBi positions are not a trait Nexus has.
#pragma once

#include "nexus/registry/common.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

inline constexpr tensor_rule falcon_tensors[] = {
    {"transformer.word_embeddings", {"embed.tokens"}},
    {"transformer.h.{L}.input_layernorm", {"layers.{L}.attn_norm"}, tensor_layout::same, "transformer.h.{L}.ln_attn"},
    {"transformer.h.{L}.post_attention_layernorm",
     {"layers.{L}.mlp_norm"},
     tensor_layout::same,
     "transformer.h.{L}.ln_mlp"},
    {"transformer.h.{L}.self_attention.query_key_value",
     {"layers.{L}.attn.q", "layers.{L}.attn.k", "layers.{L}.attn.v"},
     tensor_layout::fused_rows_per_kv_group},
    {"transformer.h.{L}.self_attention.dense", {"layers.{L}.attn.o"}},
    {"transformer.h.{L}.mlp.dense_h_to_4h", {"layers.{L}.mlp.up"}},
    {"transformer.h.{L}.mlp.dense_4h_to_h", {"layers.{L}.mlp.down"}},
    {"transformer.ln_f", {"final_norm"}},
    {"lm_head", {"lm_head"}},
};

inline descriptor parse_falcon(const config_reader& c) {
  if (c.get<bool>("alibi", false)) c.unsupported("alibi", "true", "false (ALiBi positions are not a trait yet)");
  descriptor n;
  auto& d = n.dims;
  d.vocab_size = c.get<std::int64_t>("vocab_size", 65024);
  d.hidden_size = c.field<std::int64_t>("n_embed", std::nullopt).value_or(c.get<std::int64_t>("hidden_size", 4544));
  d.num_layers = c.get<std::int64_t>("num_hidden_layers", 32);
  d.num_heads = c.get<std::int64_t>("num_attention_heads", 71);
  if (d.num_heads <= 0 || d.hidden_size % d.num_heads != 0)
    c.fail("num_attention_heads", "must divide hidden_size (the attention requires it)");
  d.head_dim = d.hidden_size / d.num_heads;
  d.max_positions = c.get<std::int64_t>("max_position_embeddings", 2048);
  d.intermediate_size = c.field<std::int64_t>("ffn_hidden_size", std::nullopt).value_or(4 * d.hidden_size);
  const bool new_arch = c.get<bool>("new_decoder_architecture", false);
  const bool parallel = c.get<bool>("parallel_attn", true);
  // The new architecture groups queries by num_kv_heads; the old one is multi-query (one k/v head) or per head.
  const auto kv = c.field<std::int64_t>("num_kv_heads", std::nullopt).value_or(d.num_heads);
  d.num_kv_heads = new_arch ? kv : c.get<bool>("multi_query", true) ? 1 : d.num_heads;
  if (new_arch && !parallel)
    c.unsupported("parallel_attn", "false", "true with new_decoder_architecture (transformers cannot run it)");
  const auto norms = c.field<std::int64_t>("num_ln_in_parallel_attn", std::nullopt).value_or(new_arch ? 2 : 1);
  n.norm = {norm_kind::layer, c.get<double>("layer_norm_epsilon", 1e-5), false, norm_placement::pre, qk_norm::none};
  n.residual = !parallel                ? residual_form::sequential
               : new_arch && norms == 2 ? residual_form::parallel_two_norms
                                        : residual_form::parallel_one_norm;
  n.position.theta = c.get<double>("rope_theta", 10000.0);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  const bool bias = c.get<bool>("bias", false);
  n.attention.qkv_bias = n.attention.o_bias = bias;
  n.mlp = {false, parse_activation(c, "activation", "gelu"), bias};
  n.embedding.tied = c.get<bool>("tie_word_embeddings", true);
  return finish(n, c);
}

inline constexpr std::string_view falcon_ignored[] = {".rotary_emb.inv_freq"};

inline constexpr family falcon_family{"falcon", parse_falcon, falcon_tensors, "transformer.", falcon_ignored};

}  // namespace nexus::registry
