// Mixtral (MixtralConfig / modeling_mixtral, 4.57): Mistral's attention with a sparse
// mixture-of-experts MLP on every layer: softmax over num_local_experts router logits, the top
// num_experts_per_tok renormalised to sum to 1; each expert a gated MLP (w1 gate, w3 up, w2 down)
// of intermediate_size. No window unless sliding_window is set (then on every layer).
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline constexpr std::array<tensor_rule, 2> hf_pre_norms{{
    {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
    {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.mlp_norm"}},
}};

inline constexpr auto mixtral_tensors =
    concat(hf_embed, hf_pre_norms, hf_attention,
           std::array<tensor_rule, 4>{{
               {"model.layers.{L}.block_sparse_moe.gate", {"layers.{L}.mlp.router"}},
               {"model.layers.{L}.block_sparse_moe.experts.{E}.w1", {"layers.{L}.mlp.experts.{E}.gate"}},
               {"model.layers.{L}.block_sparse_moe.experts.{E}.w3", {"layers.{L}.mlp.experts.{E}.up"}},
               {"model.layers.{L}.block_sparse_moe.experts.{E}.w2", {"layers.{L}.mlp.experts.{E}.down"}},
           }},
           hf_head);

/// The router of the Mixtral-like families: experts, top-k, order; checked against each other. The
/// expert count sizes tensors, so it is never defaulted; transformers' config classes map
/// `num_local_experts` and `num_experts` onto each other, and either may be what a config holds.
inline moe_desc parse_moe_router(const config_reader& c, const char* experts_key, std::int64_t top_k_default,
                                 std::int64_t expert_intermediate) {
  moe_desc m;
  m.num_experts = c.require_any<std::int64_t>({"num_experts", "num_local_experts"});
  m.top_k = c.get<std::int64_t>("num_experts_per_tok", top_k_default);
  m.expert_intermediate = expert_intermediate;
  if (m.num_experts < 0 || m.num_experts > 4096) c.fail(experts_key, "must be in [0, 4096]");
  if (m.num_experts > 0 && (m.top_k <= 0 || m.top_k > m.num_experts))
    c.fail("num_experts_per_tok", "= " + std::to_string(m.top_k) + " must be in [1, " + experts_key + " = " +
                                      std::to_string(m.num_experts) + "]");
  if (m.num_experts > 0 && m.expert_intermediate <= 0) c.fail("moe_intermediate_size", "must be positive");
  return m;
}

inline descriptor parse_mixtral(const config_reader& c) {
  auto n = parse_llama_like(c, {32000, 4096, 14336, 32, 32, 8, 4096 * 32});
  n.norm.eps = c.get<double>("rms_norm_eps", 1e-5);
  n.position.theta = c.get<double>("rope_theta", 1e6);
  // `getattr(config, "head_dim", None) or hidden_size // num_attention_heads`
  if (const auto hd = c.get<std::int64_t>("head_dim", 0); hd != 0) n.dims.head_dim = hd;
  n.attention.sliding_window = c.get<std::int64_t>("sliding_window", 0);
  n.moe = parse_moe_router(c, "num_local_experts", 2, n.dims.intermediate_size);
  n.moe.norm_topk = true;  // `routing_weights /= routing_weights.sum(dim=-1, keepdim=True)`
  if (n.moe.num_experts == 0) c.fail("num_local_experts", "must be positive");
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family mixtral_family{.model_type = "mixtral",
                                       .parse = parse_mixtral,
                                       .tensors = mixtral_tensors,
                                       .base_prefix = "model.",
                                       .ignored_suffixes = llama_ignored,
                                       .class_sizes = R"({"num_local_experts": 8})"};

}  // namespace nexus::registry
