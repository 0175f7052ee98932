// Qwen-3-MoE (Qwen3MoeConfig / modeling_qwen3_moe, 4.57): Qwen-3's attention (per-head RMS
// qk-norm, attention_bias) with Qwen-2-MoE's router and sparse layers, without a shared expert.
#pragma once

#include "nexus/registry/families/qwen2_moe.hpp"

namespace nexus::registry {

inline constexpr auto qwen3_moe_tensors =
    concat(hf_embed, hf_pre_norms, hf_attention, hf_qk_norm, hf_gated_mlp, hf_experts, hf_head);

inline descriptor parse_qwen3_moe(const config_reader& c) {
  auto n = parse_qwen_like(c, std::nullopt, {151936, 2048, 6144, 24, 32, 4, 32768});
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.norm.qk = qk_norm::per_head;
  parse_qwen_moe(c, n, 8);
  // `sliding_window if use_sliding_window else None`, then every layer's attention applies it (no max_window_layers)
  n.attention.layers.assign(std::size_t(n.dims.num_layers),
                            n.attention.sliding_window > 0 ? layer_attention::sliding : layer_attention::full);
  return finish(n, c);
}

inline constexpr family qwen3_moe_family{.model_type = "qwen3_moe",
                                         .parse = parse_qwen3_moe,
                                         .tensors = qwen3_moe_tensors,
                                         .base_prefix = "model.",
                                         .ignored_suffixes = llama_ignored,
                                         .class_sizes = R"({"num_experts": 128, "moe_intermediate_size": 768})"};

}  // namespace nexus::registry
