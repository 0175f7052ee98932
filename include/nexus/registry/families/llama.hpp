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

// llama.cpp's tensor names (gguf-py's TensorNameMap), shared like the Hugging Face fragments above.
inline constexpr std::array<tensor_rule, 1> gguf_embed{{{"token_embd", {"embed.tokens"}}}};
inline constexpr std::array<tensor_rule, 4> gguf_attention{{
    {"blk.{L}.attn_q", {"layers.{L}.attn.q"}},
    {"blk.{L}.attn_k", {"layers.{L}.attn.k"}},
    {"blk.{L}.attn_v", {"layers.{L}.attn.v"}},
    {"blk.{L}.attn_output", {"layers.{L}.attn.o"}},
}};
inline constexpr std::array<tensor_rule, 2> gguf_qk_norm{{
    {"blk.{L}.attn_q_norm", {"layers.{L}.attn.q_norm"}},
    {"blk.{L}.attn_k_norm", {"layers.{L}.attn.k_norm"}},
}};
inline constexpr std::array<tensor_rule, 3> gguf_gated_mlp{{
    {"blk.{L}.ffn_gate", {"layers.{L}.mlp.gate"}},
    {"blk.{L}.ffn_up", {"layers.{L}.mlp.up"}},
    {"blk.{L}.ffn_down", {"layers.{L}.mlp.down"}},
}};
inline constexpr std::array<tensor_rule, 2> gguf_pre_norms{{
    {"blk.{L}.attn_norm", {"layers.{L}.attn_norm"}},
    {"blk.{L}.ffn_norm", {"layers.{L}.mlp_norm"}},
}};
inline constexpr std::array<tensor_rule, 2> gguf_head{{{"output_norm", {"final_norm"}}, {"output", {"lm_head"}}}};

// The metadata keys transformers' GGUF loader maps for Llama-like families (integrations/ggml.py,
// GGUF_CONFIG_MAPPING), "<arch>." omitted.
inline constexpr std::array<gguf_key, 9> gguf_common_keys{{
    {"context_length", "max_position_embeddings"},
    {"block_count", "num_hidden_layers"},
    {"feed_forward_length", "intermediate_size"},
    {"embedding_length", "hidden_size"},
    {"rope.freq_base", "rope_theta"},
    {"attention.head_count", "num_attention_heads"},
    {"attention.head_count_kv", "num_key_value_heads"},
    {"attention.layer_norm_rms_epsilon", "rms_norm_eps"},
    {"vocab_size", "vocab_size"},
}};
template <std::size_t N, std::size_t M>
constexpr auto concat_keys(const std::array<gguf_key, N>& a, const std::array<gguf_key, M>& b) {
  std::array<gguf_key, N + M> out{};
  std::copy(a.begin(), a.end(), out.begin());
  std::copy(b.begin(), b.end(), out.begin() + std::ptrdiff_t(N));
  return out;
}

// Llama: llama.cpp permutes the Q/K rows (LlamaModel.permute); transformers' LlamaTensorProcessor undoes it.
// rope.dimension_count is read as head_dim (llama.cpp writes head_dim, or hidden / heads, there).
inline constexpr auto llama_gguf_tensors =
    concat(gguf_embed, gguf_pre_norms,
           std::array<tensor_rule, 4>{{
               {"blk.{L}.attn_q", {"layers.{L}.attn.q"}, tensor_layout::rope_pairs_rows},
               {"blk.{L}.attn_k", {"layers.{L}.attn.k"}, tensor_layout::rope_pairs_rows},
               {"blk.{L}.attn_v", {"layers.{L}.attn.v"}},
               {"blk.{L}.attn_output", {"layers.{L}.attn.o"}},
           }},
           gguf_gated_mlp, gguf_head);
inline constexpr auto llama_gguf_keys =
    concat_keys(gguf_common_keys, std::array<gguf_key, 1>{{{"rope.dimension_count", "head_dim"}}});
inline constexpr gguf_format llama_gguf{"llama", llama_gguf_keys, llama_gguf_tensors};

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

inline constexpr family llama_family{"llama", parse_llama, llama_tensors, "model.", llama_ignored, {}, {}, &llama_gguf};

}  // namespace nexus::registry
