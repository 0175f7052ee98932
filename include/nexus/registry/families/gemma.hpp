// Gemma (GemmaConfig / modeling_gemma, 4.57): Llama with (1 + w) RMS norms, embeddings scaled by
// sqrt(hidden_size), tied embeddings and gelu-tanh by default.
#pragma once

#include <cmath>

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

/// Fields Gemma and Gemma-2 share; `act_key` is the one their modeling reads.
inline descriptor parse_gemma_like(const config_reader& c, const llama_like_defaults& def, const std::string& act_key) {
  auto n = parse_llama_like(c, def);
  // No None fallback in GemmaConfig: a null kv-head count or head_dim breaks transformers too.
  if (c.is_null("num_key_value_heads")) c.fail("num_key_value_heads", "must not be null");
  n.dims.head_dim = c.field<std::int64_t>("head_dim", 256).value_or(0);
  n.norm.unit_offset = true;
  n.mlp.act = parse_activation(c, act_key, "gelu_pytorch_tanh");
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.embedding.scale = std::sqrt(double(n.dims.hidden_size));
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return n;
}

inline descriptor parse_gemma(const config_reader& c) {
  // modeling_gemma uses ACT2FN[config.hidden_act]; `hidden_activation` is stored and ignored.
  return finish(parse_gemma_like(c, {256000, 3072, 24576, 28, 16, 16, 8192, true}, "hidden_act"), c);
}

// llama.cpp stores every Gemma RMSNorm weight as 1 + w and drops lm_head (tied). transformers has no GGUF loader
// for gemma 1; its Gemma-2/3 loader subtracts 1 from every "norm.weight" (Gemma2TensorProcessor), as here.
inline constexpr std::array<tensor_rule, 2> gguf_gemma_norms{{
    {"blk.{L}.attn_norm", {"layers.{L}.attn_norm"}, tensor_layout::plus_one},
    {"blk.{L}.ffn_norm", {"layers.{L}.mlp_norm"}, tensor_layout::plus_one},
}};
inline constexpr std::array<tensor_rule, 2> gguf_gemma_head{
    {{"output_norm", {"final_norm"}, tensor_layout::plus_one}, {"output", {"lm_head"}}}};
inline constexpr auto gemma_gguf_tensors =
    concat(gguf_embed, gguf_gemma_norms, gguf_attention, gguf_gated_mlp, gguf_gemma_head);
inline constexpr auto gemma_gguf_keys =
    concat_keys(gguf_common_keys, std::array<gguf_key, 1>{{{"attention.key_length", "head_dim"}}});
inline constexpr gguf_format gemma_gguf{"gemma", gemma_gguf_keys, gemma_gguf_tensors};

inline constexpr family gemma_family{"gemma", parse_gemma, llama_tensors, "model.", llama_ignored, {}, {}, &gemma_gguf};

}  // namespace nexus::registry
