// Qwen-2-MoE (Qwen2MoeConfig / modeling_qwen2_moe, 4.57): Qwen-2's attention (q/k/v biases,
// qkv_bias) with a mixture of experts on the layers where (i + 1) % decoder_sparse_step == 0 and i
// is not in mlp_only_layers (the others keep a dense MLP of intermediate_size): softmax, top-k,
// renormalised if norm_topk_prob, plus a shared expert scaled by sigmoid(shared_expert_gate · x).
#pragma once

#include "nexus/registry/families/mixtral.hpp"
#include "nexus/registry/families/qwen2.hpp"

namespace nexus::registry {

inline constexpr std::array<tensor_rule, 4> hf_experts{{
    {"model.layers.{L}.mlp.gate", {"layers.{L}.mlp.router"}},
    {"model.layers.{L}.mlp.experts.{E}.gate_proj", {"layers.{L}.mlp.experts.{E}.gate"}},
    {"model.layers.{L}.mlp.experts.{E}.up_proj", {"layers.{L}.mlp.experts.{E}.up"}},
    {"model.layers.{L}.mlp.experts.{E}.down_proj", {"layers.{L}.mlp.experts.{E}.down"}},
}};

inline constexpr auto qwen2_moe_tensors =
    concat(hf_embed, hf_pre_norms, hf_attention, hf_qk_norm, hf_gated_mlp, hf_experts,
           std::array<tensor_rule, 4>{{
               {"model.layers.{L}.mlp.shared_expert.gate_proj", {"layers.{L}.mlp.shared.gate"}},
               {"model.layers.{L}.mlp.shared_expert.up_proj", {"layers.{L}.mlp.shared.up"}},
               {"model.layers.{L}.mlp.shared_expert.down_proj", {"layers.{L}.mlp.shared.down"}},
               {"model.layers.{L}.mlp.shared_expert_gate", {"layers.{L}.mlp.shared_gate"}},
           }},
           hf_head);

/// The layers that keep the dense MLP: `(layer_idx not in mlp_only_layers) and (num_experts > 0 and
/// (layer_idx + 1) % decoder_sparse_step == 0)` picks the sparse ones.
inline std::vector<std::int64_t> parse_dense_layers(const config_reader& c, std::int64_t layers) {
  const auto step = c.get<std::int64_t>("decoder_sparse_step", 1);
  if (step <= 0) c.fail("decoder_sparse_step", "must be positive");
  std::vector<std::int64_t> only;
  if (c.has("mlp_only_layers") && !c.is_null("mlp_only_layers")) {
    if (!c.json().at("mlp_only_layers").is_array()) c.fail("mlp_only_layers", "must be a list of layer indices");
    for (const auto& v : c.json().at("mlp_only_layers")) {
      if (!v.is_number_integer()) c.fail("mlp_only_layers", "must be a list of layer indices");
      only.push_back(v.get<std::int64_t>());
    }
  }
  std::vector<std::int64_t> dense;
  for (std::int64_t i = 0; i < layers; ++i)
    if (std::find(only.begin(), only.end(), i) != only.end() || (i + 1) % step != 0) dense.push_back(i);
  return dense;
}

/// What Qwen-2-MoE and Qwen-3-MoE share: the router, its layers, norm_topk_prob. The expert count
/// and size are required (they size tensors).
inline void parse_qwen_moe(const config_reader& c, descriptor& n, std::int64_t top_k) {
  n.moe = parse_moe_router(c, "num_experts", top_k, c.require<std::int64_t>("moe_intermediate_size"));
  n.moe.norm_topk = c.get<bool>("norm_topk_prob", false);
  n.moe.dense_layers = parse_dense_layers(c, n.dims.num_layers);
}

inline descriptor parse_qwen2_moe(const config_reader& c) {
  // modeling_qwen2_moe (4.57) windows only its flash-attention path (layers from max_window_layers on); eager and
  // sdpa attend to everything: no one answer to match.
  if (c.get<bool>("use_sliding_window", false))
    c.unsupported("use_sliding_window", "true", "false (transformers' attention implementations disagree on it)");
  auto n = parse_qwen_like(c, std::nullopt, {151936, 2048, 5632, 24, 16, 16, 32768});
  n.attention.qkv_bias = c.get<bool>("qkv_bias", true);
  parse_qwen_moe(c, n, 4);
  n.moe.shared_intermediate = c.get<std::int64_t>("shared_expert_intermediate_size", 5632);
  n.moe.shared_gate = n.moe.shared_intermediate > 0;
  return finish(n, c);
}

inline constexpr family qwen2_moe_family{.model_type = "qwen2_moe",
                                         .parse = parse_qwen2_moe,
                                         .tensors = qwen2_moe_tensors,
                                         .base_prefix = "model.",
                                         .ignored_suffixes = llama_ignored,
                                         .class_sizes = R"({"num_experts": 60, "moe_intermediate_size": 1408})"};

}  // namespace nexus::registry
