// The table of families × traits, generated from the registry (each family's defaults, as its
// transformers config class defines them). docs/architectures.md embeds it; a test keeps the
// two equal.
#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "nexus/arch/rope.hpp"
#include "nexus/model/traits.hpp"
#include "nexus/registry/registry.hpp"

namespace nexus::registry {

/// "8, top 2 (softmax_topk, renormalised); shared 5632 gated; dense 1 of 24 layers", or "—".
inline std::string moe_text(const descriptor& n) {
  const auto& m = n.moe;
  if (m.num_experts == 0) return "—";
  auto out = fmt::format("{}, top {} ({}{})", m.num_experts, m.top_k, reflect::to_string(m.order),
                         m.norm_topk ? ", renormalised" : "");
  if (m.shared_intermediate) out += fmt::format("; shared {}{}", m.shared_intermediate, m.shared_gate ? " gated" : "");
  if (!m.dense_layers.empty()) out += fmt::format("; dense {} of {} layers", m.dense_layers.size(), n.dims.num_layers);
  return out;
}

/// A family's defaults (its transformers config class) as the descriptor Nexus reads from them.
inline descriptor family_defaults(const family& f) {
  auto config = nlohmann::json::parse(f.class_sizes);
  config["model_type"] = f.model_type;
  return describe(config, "defaults");
}

/// The instantiation a descriptor runs on, or none.
inline std::optional<std::size_t> instantiation_of(const descriptor& n) {
  try {
    return find_instantiation(traits_of(n));
  } catch (const unsupported_error&) {
    return std::nullopt;
  }
}

/// Every family: {"family", "instantiation" (index or null), "descriptor"} (the table's source, whole).
inline nlohmann::ordered_json architecture_table_json() {
  auto out = nlohmann::ordered_json::array();
  for (const auto* f : families) {
    const auto n = family_defaults(*f);
    const auto inst = instantiation_of(n);
    out.push_back({{"family", f->model_type},
                   {"instantiation", inst ? nlohmann::ordered_json(*inst) : nlohmann::ordered_json(nullptr)},
                   {"descriptor", reflect::to_json(n)}});
  }
  return out;
}

inline std::string architecture_table_markdown() {
  using reflect::to_string;
  std::string out =
      "| family | norm | 1+w | placement | qk-norm | positions | rope style | rotary | sliding-layer rope | mlp | act | residual | qkv/o/mlp/head bias | tied | attn softcap | final softcap | window | layers without rope | experts | instantiation |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  auto yn = [](bool b) { return std::string(b ? "yes" : "no"); };
  auto num = [](double v) { return v == 0 ? std::string("—") : fmt::format("{}", v); };
  for (const auto* f : families) {
    const auto n = family_defaults(*f);
    const bool rope = n.position.kind == position_kind::rope;
    const auto inst = instantiation_of(n);
    const auto inst_text = inst ? fmt::format("#{}", *inst) : std::string("none");
    out += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{}/{}/{} | {} | {} | {} | {} | {} | {} | {} |\n",
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
        n.position.unrotated_layers.empty()
            ? std::string("—")
            : fmt::format("{} of {}", n.position.unrotated_layers.size(), n.dims.num_layers),
        moe_text(n), inst_text);
  }
  return out;
}

}  // namespace nexus::registry
