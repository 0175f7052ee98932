// GraniteMoE (GraniteMoeConfig / modeling_granitemoe, 4.57): Granite's multipliers with a mixture of
// experts on every layer: the router keeps the top num_experts_per_tok logits and takes their
// softmax; every expert's gate and up rows are stacked in one tensor (input_linear [experts, 2 ·
// intermediate, hidden], gate first) and the down projections in another (output_linear).
#pragma once

#include "nexus/registry/families/granite.hpp"
#include "nexus/registry/families/mixtral.hpp"

namespace nexus::registry {

inline constexpr auto granitemoe_tensors =
    concat(hf_embed, hf_pre_norms, hf_attention,
           std::array<tensor_rule, 3>{{
               {"model.layers.{L}.block_sparse_moe.router.layer", {"layers.{L}.mlp.router"}},
               {"model.layers.{L}.block_sparse_moe.input_linear",
                {"layers.{L}.mlp.experts.{E}.gate", "layers.{L}.mlp.experts.{E}.up"},
                tensor_layout::experts_rows},
               {"model.layers.{L}.block_sparse_moe.output_linear",
                {"layers.{L}.mlp.experts.{E}.down"},
                tensor_layout::experts_rows},
           }},
           hf_head);

inline descriptor parse_granitemoe(const config_reader& c) {
  const auto positions = c.get<std::string>("position_embedding_type", "rope");
  if (positions != "rope") c.unsupported("position_embedding_type", "\"" + positions + "\"", "rope");
  auto n = parse_llama_like(c, {32000, 4096, 11008, 32, 32, std::nullopt, 2048});
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  parse_granite_multipliers(c, n);
  n.moe = parse_moe_router(c, "num_local_experts", 2, n.dims.intermediate_size);
  if (n.moe.num_experts == 0) c.fail("num_local_experts", "must be positive");
  n.moe.order = router_order::topk_softmax;
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

inline constexpr family granitemoe_family{.model_type = "granitemoe",
                                          .parse = parse_granitemoe,
                                          .tensors = granitemoe_tensors,
                                          .base_prefix = "model.",
                                          .ignored_suffixes = llama_ignored,
                                          .class_sizes = R"({"num_local_experts": 8})"};

}  // namespace nexus::registry
