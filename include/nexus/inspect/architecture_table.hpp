// The table of families × traits, generated from the registry (each family's defaults, as its
// transformers config class defines them). docs/architectures.md embeds it; a test keeps the
// two equal.
#pragma once

#include <algorithm>
#include <string>

#include "nexus/arch/rope.hpp"
#include "nexus/model/traits.hpp"
#include "nexus/registry/registry.hpp"

namespace nexus::registry {

inline std::string architecture_table_markdown() {
  using reflect::to_string;
  std::string out =
      "| family | norm | 1+w | placement | qk-norm | positions | rope style | rotary | sliding-layer rope | mlp | act | residual | qkv/o/mlp/head bias | tied | attn softcap | final softcap | window | instantiation |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto yn = [](bool b) { return std::string(b ? "yes" : "no"); };
  auto num = [](double v) { return v == 0 ? std::string("—") : fmt::format("{}", v); };
  for (const auto* f : families) {
    const auto n = describe(nlohmann::json{{"model_type", f->model_type}}, "defaults");
    const bool rope = n.position.kind == position_kind::rope;
    std::size_t inst = 0;
    std::string inst_text;
    try {
      inst = find_instantiation(traits_of(n));
      inst_text = fmt::format("#{}", inst);
    } catch (const unsupported_error&) {
      inst_text = "none";
    }
    out += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{}/{}/{} | {} | {} | {} | {} | {} |\n",
        f->model_type, to_string(n.norm.kind), yn(n.norm.unit_offset), to_string(n.norm.placement),
        to_string(n.norm.qk), to_string(n.position.kind), rope ? std::string(to_string(n.position.style)) : "—",
        rope ? fmt::format("{}", n.position.partial_rotary) : "—",
        rope && has_sliding_rope(n.position)
            ? fmt::format("θ {} (global θ {})", n.position.sliding.theta, n.position.theta)
            : "—",
        n.mlp.gated ? "gated" : "plain", to_string(n.mlp.act), to_string(n.residual), yn(n.attention.qkv_bias),
        yn(n.attention.o_bias), yn(n.mlp.bias), yn(n.head.bias), yn(n.embedding.tied), num(n.attention.softcap),
        num(n.head.final_softcap),
        n.attention.sliding_window
            ? fmt::format("{} on {} of {} layers", n.attention.sliding_window,
                          std::count(n.attention.layers.begin(), n.attention.layers.end(), layer_attention::sliding),
                          n.dims.num_layers)
            : "—",
        inst_text);
  }
  return out;
}

}  // namespace nexus::registry
