// OLMoE (OlmoeConfig / modeling_olmoe, 4.57): Llama's pre-norm block with RMS qk-norm over the
// full width, optional clip_qkv, and a mixture of experts on every layer (softmax, top-k,
// renormalised if norm_topk_prob), each expert intermediate_size wide.
#pragma once

#include "nexus/registry/families/qwen2_moe.hpp"

namespace nexus::registry {

inline constexpr auto olmoe_tensors = concat(hf_embed, hf_pre_norms, hf_attention, hf_qk_norm, hf_experts, hf_head);

inline descriptor parse_olmoe(const config_reader& c) {
  auto n = parse_llama_like(c, {50304, 2048, 2048, 16, 16, std::nullopt, 4096});
  n.norm.eps = c.get<double>("rms_norm_eps", 1e-5);
  n.norm.qk = qk_norm::full_width;
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.attention.qkv_clip = c.get<double>("clip_qkv", 0.0);
  if (n.attention.qkv_clip < 0) c.fail("clip_qkv", "must not be negative");
  n.moe = parse_moe_router(c, "num_experts", 8, n.dims.intermediate_size);
  if (n.moe.num_experts == 0) c.fail("num_experts", "must be positive");
  n.moe.norm_topk = c.get<bool>("norm_topk_prob", false);
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return finish(n, c);
}

inline constexpr family olmoe_family{.model_type = "olmoe",
                                     .parse = parse_olmoe,
                                     .tensors = olmoe_tensors,
                                     .base_prefix = "model.",
                                     .ignored_suffixes = llama_ignored,
                                     .class_sizes = R"({"num_experts": 64})"};

}  // namespace nexus::registry
