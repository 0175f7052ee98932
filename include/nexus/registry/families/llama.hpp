// Llama (transformers LlamaConfig / modeling_llama, 4.57). Its checkpoint layout is the one most
// families share: their files reuse `llama_tensors`.
#pragma once

#include "nexus/registry/common.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

// Module names most Hugging Face decoders share; family tables compose them.
inline constexpr std::array<tensor_rule, 1> hf_embed{{{"model.embed_tokens", {"embed.tokens"}}}};
inline constexpr std::array<tensor_rule, 4> hf_attention{{
    {"model.layers.{L}.self_attn.q_proj", {"layers.{L}.attn.q"}},
    {"model.layers.{L}.self_attn.k_proj", {"layers.{L}.attn.k"}},
    {"model.layers.{L}.self_attn.v_proj", {"layers.{L}.attn.v"}},
    {"model.layers.{L}.self_attn.o_proj", {"layers.{L}.attn.o"}},
}};
inline constexpr std::array<tensor_rule, 2> hf_qk_norm{{
    {"model.layers.{L}.self_attn.q_norm", {"layers.{L}.attn.q_norm"}},
    {"model.layers.{L}.self_attn.k_norm", {"layers.{L}.attn.k_norm"}},
}};
inline constexpr std::array<tensor_rule, 3> hf_gated_mlp{{
    {"model.layers.{L}.mlp.gate_proj", {"layers.{L}.mlp.gate"}},
    {"model.layers.{L}.mlp.up_proj", {"layers.{L}.mlp.up"}},
    {"model.layers.{L}.mlp.down_proj", {"layers.{L}.mlp.down"}},
}};
inline constexpr std::array<tensor_rule, 2> hf_head{{{"model.norm", {"final_norm"}}, {"lm_head", {"lm_head"}}}};

// Rules for tensors a descriptor does not have (Qwen-3's q_norm on a Llama) are skipped.
inline constexpr auto llama_tensors = concat(hf_embed,
                                             std::array<tensor_rule, 2>{{
                                                 {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
                                                 {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.mlp_norm"}},
                                             }},
                                             hf_attention, hf_qk_norm, hf_gated_mlp, hf_head);

inline constexpr std::string_view llama_ignored[] = {".rotary_emb.inv_freq"};

/// The fields Llama-like configs share, with the defaults of the family that calls it.
struct llama_like_defaults {
  std::int64_t vocab, hidden, intermediate, layers, heads;
  std::optional<std::int64_t> kv_heads;  // nullopt: num_attention_heads
  std::int64_t max_positions;
  bool tied = false;
};

inline descriptor parse_llama_like(const config_reader& c, const llama_like_defaults& def) {
  descriptor n;
  auto& d = n.dims;
  d.vocab_size = c.get<std::int64_t>("vocab_size", def.vocab);
  d.hidden_size = c.get<std::int64_t>("hidden_size", def.hidden);
  d.intermediate_size = c.get<std::int64_t>("intermediate_size", def.intermediate);
  d.num_layers = c.get<std::int64_t>("num_hidden_layers", def.layers);
  d.num_heads = c.get<std::int64_t>("num_attention_heads", def.heads);
  if (d.num_heads <= 0) c.fail("num_attention_heads", "must be positive");
  // `if num_key_value_heads is None: num_key_value_heads = num_attention_heads`
  d.num_kv_heads = c.field<std::int64_t>("num_key_value_heads", def.kv_heads).value_or(d.num_heads);
  d.max_positions = c.get<std::int64_t>("max_position_embeddings", def.max_positions);
  d.head_dim = d.hidden_size / d.num_heads;
  n.norm = {norm_kind::rms, c.get<double>("rms_norm_eps", 1e-6), false, norm_placement::pre, qk_norm::none};
  n.position.theta = c.get<double>("rope_theta", 10000.0);
  n.mlp = {true, parse_activation(c, "hidden_act", "silu"), false};
  n.embedding.tied = c.get<bool>("tie_word_embeddings", def.tied);
  return n;
}

inline descriptor parse_llama(const config_reader& c) {
  auto n = parse_llama_like(c, {32000, 4096, 11008, 32, 32, std::nullopt, 2048});
  // `head_dim if head_dim is not None else hidden_size // num_attention_heads`
  n.dims.head_dim = c.get<std::int64_t>("head_dim", n.dims.head_dim);
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.mlp.bias = c.get<bool>("mlp_bias", false);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return finish(n, c);
}

inline constexpr family llama_family{"llama", parse_llama, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
