// Parsing pieces shared by the family files: activation names, rope_scaling, layer types, and
// the final consistency checks. Each mirrors what transformers 4.57 does, cited where it matters.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "nexus/arch/descriptor.hpp"
#include "nexus/registry/config_reader.hpp"

namespace nexus::registry {

/// Rotated dims per head as the modeling code computes them: int(head_dim · partial_rotary_factor).
inline std::int64_t rotary_dim_of(std::int64_t head_dim, double partial_rotary) {
  return static_cast<std::int64_t>(double(head_dim) * partial_rotary);
}

/// transformers' ACT2FN names -> activation, from the one activation list (arch/enums.hpp).
inline activation parse_activation(const config_reader& c, const std::string& key, const std::string& dflt) {
  const auto name = c.get<std::string>(key, dflt);
  std::string supported;
  for (const auto& a : activation_names_table)
    for (const auto hf : a.transformers) {
      if (hf.empty()) continue;
      if (hf == name) return a.act;
      supported += (supported.empty() ? "" : ", ") + std::string(hf);
    }
  c.unsupported(key, "\"" + name + "\"", supported);
}

/// A logit softcap (tanh(x / cap) · cap): absent -> `dflt` (nullopt: none), null -> none (0). A written value must
/// be positive: transformers divides by it, so 0 gives non-finite logits and a negative cap acts as
/// its absolute value — neither may silently become "no cap".
inline double parse_softcap(const config_reader& c, const std::string& key, std::optional<double> dflt) {
  const auto cap = c.field<double>(key, dflt);
  if (cap && !(*cap > 0)) c.fail(key, "= " + std::to_string(*cap) + " must be positive (null turns the softcap off)");
  return cap.value_or(0.0);
}

/// Set (by registry::with_legacy_rope_keys) on a config whose RoPE settings came from transformers 5's
/// `rope_parameters`: 5.x reads them with its own rules, without the 4.x config classes' extra validations.
inline constexpr const char* from_rope_parameters_key = "__nexus_from_rope_parameters";
inline bool from_rope_parameters(const config_reader& c) { return c.has(from_rope_parameters_key); }

enum class rope_type_key {
  rope_type_first,  // rope_scaling.get("rope_type", rope_scaling.get("type"))
  type_first,       // configs that copy "type" over "rope_type" in __init__ (Llama, Qwen2, Phi, GPT-NeoX)
};

/// One rope_scaling object (`rs`) -> rope_scaling_desc, resolving defaults exactly as
/// modeling_rope_utils does. Reads dims, partial_rotary (and rotary_dim when the family set it)
/// from `n`; `top_level_original` is the config's own original_max_position_embeddings (Phi-3).
inline rope_scaling_desc parse_rope_scaling_object(const config_reader& rs, const descriptor& n, rope_type_key order,
                                                   std::optional<std::int64_t> top_level_original = std::nullopt) {
  const std::int64_t max_positions = n.dims.max_positions;
  const std::int64_t rotary_dim =
      n.position.rotary_dim ? n.position.rotary_dim : rotary_dim_of(n.dims.head_dim, n.position.partial_rotary);
  rope_scaling_desc s;
  const auto a = rs.field<std::string>("rope_type"), b = rs.field<std::string>("type");
  const auto name = order == rope_type_key::type_first ? (b ? b : a) : (a ? a : b);
  if (!name) rs.fail("rope_type", "is required (or its legacy spelling 'type')");
  const std::string key =
      (order == rope_type_key::type_first ? (b ? "type" : "rope_type") : (a ? "rope_type" : "type"));
  if (*name == "default") return s;
  const auto type = reflect::parse_enum<rope_scaling>(*name);
  if (!type || *type == rope_scaling::none)
    rs.unsupported(key, "\"" + *name + "\"", "default, linear, dynamic, yarn, llama3, longrope");
  s.type = *type;
  if (rs.has("factor") && !(rs.get<double>("factor", 1.0) > 0)) rs.fail("factor", "must be positive");
  switch (s.type) {
    case rope_scaling::linear: s.factor = rs.require<double>("factor"); break;
    case rope_scaling::dynamic:
      s.factor = rs.require<double>("factor");
      s.original_max_positions = max_positions;
      break;
    case rope_scaling::yarn: {
      s.factor = rs.require<double>("factor");
      s.original_max_positions = rs.get<std::int64_t>("original_max_position_embeddings", 0);
      if (s.original_max_positions == 0) s.original_max_positions = max_positions;  // `or` in Python
      const auto mscale = [](double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
      const double m = rs.get<double>("mscale", 0.0), m_all = rs.get<double>("mscale_all_dim", 0.0);
      if (const auto af = rs.field<double>("attention_factor")) s.attention_factor = *af;
      else if (m != 0 && m_all != 0) s.attention_factor = mscale(s.factor, m) / mscale(s.factor, m_all);
      else s.attention_factor = mscale(s.factor, 1.0);
      s.beta_fast = rs.get<double>("beta_fast", 0.0);
      s.beta_slow = rs.get<double>("beta_slow", 0.0);
      if (s.beta_fast == 0) s.beta_fast = 32;  // `or 32`
      if (s.beta_slow == 0) s.beta_slow = 1;   // `or 1`
      s.truncate = rs.get<bool>("truncate", true);
      break;
    }
    case rope_scaling::llama3:
      s.factor = rs.require<double>("factor");
      s.low_freq_factor = rs.require<double>("low_freq_factor");
      s.high_freq_factor = rs.require<double>("high_freq_factor");
      s.original_max_positions = rs.require<std::int64_t>("original_max_position_embeddings");
      if (!(s.high_freq_factor > s.low_freq_factor)) rs.fail("high_freq_factor", "must be above low_freq_factor");
      if (s.original_max_positions <= 0) rs.fail("original_max_position_embeddings", "must be positive");
      break;
    case rope_scaling::longrope: {
      s.short_factor = rs.require<std::vector<double>>("short_factor");
      s.long_factor = rs.require<std::vector<double>>("long_factor");
      const auto pairs = static_cast<std::size_t>(rotary_dim / 2);
      if (s.short_factor.size() != pairs)
        rs.fail("short_factor", "must have " + std::to_string(pairs) + " entries (rotary_dim / 2), got " +
                                    std::to_string(s.short_factor.size()));
      if (s.long_factor.size() != pairs)
        rs.fail("long_factor", "must have " + std::to_string(pairs) + " entries (rotary_dim / 2), got " +
                                   std::to_string(s.long_factor.size()));
      // Phi-3 style: the ratio of context lengths replaces `factor` when the config has the original length.
      if (top_level_original && *top_level_original > 0) {
        s.original_max_positions = *top_level_original;
        s.factor = double(max_positions) / double(*top_level_original);
      } else {
        s.original_max_positions = max_positions;
        s.factor = rs.require<double>("factor");
      }
      if (const auto af = rs.field<double>("attention_factor")) s.attention_factor = *af;
      else
        s.attention_factor =
            s.factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(s.factor) / std::log(double(s.original_max_positions)));
      break;
    }
    case rope_scaling::none: break;
  }
  return s;
}

/// rope_config_validation (4.57), which configs that do not copy "type" over "rope_type" run: once the legacy
/// "type" is there, "rope_type" is required too (Gemma 3, OLMo-3).
inline void require_rope_type_beside_type(const config_reader& c) {
  if (c.has("rope_scaling") && c.json().at("rope_scaling").is_object() &&
      c.json().at("rope_scaling").contains("type") && !c.json().at("rope_scaling").contains("rope_type"))
    c.sub("rope_scaling")
        .fail("rope_type", "is required beside the legacy 'type' (the config class refuses 'type' alone)");
}

/// The config's rope_scaling (absent or null: none). `original_default` is the class default of a
/// top-level original_max_position_embeddings (Phi-3).
inline rope_scaling_desc parse_rope_scaling(const config_reader& c, const descriptor& n, rope_type_key order,
                                            std::optional<std::int64_t> original_default = std::nullopt) {
  const auto top_level_original = c.field<std::int64_t>("original_max_position_embeddings", original_default);
  if (!c.has("rope_scaling") || c.is_null("rope_scaling")) return {};
  return parse_rope_scaling_object(c.sub("rope_scaling"), n, order, top_level_original);
}

/// transformers 5 nests rope_parameters by layer type where the two kinds of layer rotate
/// differently ({"full_attention": {...}, "sliding_attention": {...}}).
inline bool is_per_layer_type_rope(const nlohmann::json& rp) {
  return rp.is_object() && (rp.contains("full_attention") || rp.contains("sliding_attention"));
}

/// rope_parameters per layer type (is_per_layer_type_rope): each object read like a flat rope_parameters (a
/// missing type is default; a missing rope_theta keeps what `n` has) into the full-attention layers' settings
/// (n.position) and the sliding ones' (n.position.sliding, which starts as the full layers' where unset).
inline void parse_per_layer_type_rope(const config_reader& c, descriptor& n) {
  const auto rp = c.sub("rope_parameters");
  for (const auto& [key, value] : rp.json().items())
    if (key != "full_attention" && key != "sliding_attention")
      rp.unsupported(key, value.dump().substr(0, 100), "full_attention, sliding_attention");
  auto& p = n.position;
  if (p.sliding.theta == 0) p.sliding = {p.theta, p.scaling};
  const auto read = [&](const char* kind, double& theta, rope_scaling_desc& scaling) {
    if (!rp.has(kind) || rp.is_null(kind)) return;
    const auto one = rp.sub(kind);
    theta = one.get<double>("rope_theta", theta);
    scaling = one.has("rope_type") || one.has("type")
                  ? parse_rope_scaling_object(one, n, rope_type_key::rope_type_first)
                  : rope_scaling_desc{};
    if (!(theta > 0)) one.fail("rope_theta", "must be positive");
  };
  read("full_attention", p.theta, p.scaling);
  read("sliding_attention", p.sliding.theta, p.sliding.scaling);
}

/// layer_types ("full_attention"/"sliding_attention"), validated against the layer count.
inline std::vector<layer_attention> parse_layer_types(const config_reader& c, std::int64_t layers) {
  const auto names = c.require<std::vector<std::string>>("layer_types");
  if (std::int64_t(names.size()) != layers)
    c.fail("layer_types", "has " + std::to_string(names.size()) + " entries for " + std::to_string(layers) + " layers");
  std::vector<layer_attention> out;
  for (const auto& n : names) {
    if (n == "full_attention") out.push_back(layer_attention::full);
    else if (n == "sliding_attention") out.push_back(layer_attention::sliding);
    else c.unsupported("layer_types", "[... \"" + n + "\" ...]", "full_attention, sliding_attention");
  }
  return out;
}

/// Checks that hold for every family, and values derived the same way for all of them.
/// Call last in each family's parse.
inline descriptor finish(descriptor n, const config_reader& c) {
  auto& d = n.dims;
  const std::pair<const char*, std::int64_t> positive[] = {{"vocab_size", d.vocab_size},
                                                           {"hidden_size", d.hidden_size},
                                                           {"num_hidden_layers", d.num_layers},
                                                           {"num_attention_heads", d.num_heads},
                                                           {"num_key_value_heads", d.num_kv_heads},
                                                           {"head_dim", d.head_dim},
                                                           {"intermediate_size", d.intermediate_size},
                                                           {"max_position_embeddings", d.max_positions}};
  // Bounds far above any real model keep shape arithmetic free of overflow on hostile input.
  constexpr std::int64_t max_size = std::int64_t(1) << 26, max_layers = 1024;
  for (const auto& [key, v] : positive) {
    if (v <= 0) c.fail(key, "must be positive, got " + std::to_string(v));
    if (v > max_size) c.fail(key, "= " + std::to_string(v) + " is above the limit of " + std::to_string(max_size));
  }
  if (d.num_layers > max_layers)
    c.fail("num_hidden_layers",
           "= " + std::to_string(d.num_layers) + " is above the limit of " + std::to_string(max_layers));
  // Projection widths too: 32-bit shape arithmetic in the kernels must not overflow.
  if (d.num_heads * d.head_dim > max_size)
    c.fail("num_attention_heads", "· head_dim = " + std::to_string(d.num_heads) + " · " + std::to_string(d.head_dim) +
                                      " is above the limit of " + std::to_string(max_size));
  if (d.num_heads % d.num_kv_heads != 0)
    c.fail("num_key_value_heads",
           "= " + std::to_string(d.num_kv_heads) + " must divide num_attention_heads = " + std::to_string(d.num_heads));
  if (!(n.norm.eps > 0)) c.fail("eps", "must be positive");
  if (n.attention.scale == 0.0) n.attention.scale = 1.0 / std::sqrt(double(d.head_dim));
  if (n.attention.sliding_window < 0) c.fail("sliding_window", "must not be negative");
  if (n.attention.layers.empty())
    n.attention.layers.assign(std::size_t(d.num_layers),
                              n.attention.sliding_window > 0 ? layer_attention::sliding : layer_attention::full);
  if (n.attention.sliding_window == 0)
    n.attention.layers.assign(std::size_t(d.num_layers), layer_attention::full);  // no window: every layer full
  if (n.position.kind == position_kind::rope) {
    if (!(n.position.partial_rotary > 0 && n.position.partial_rotary <= 1))
      c.fail("partial_rotary_factor", "must be in (0, 1]");
    if (n.position.rotary_dim == 0) n.position.rotary_dim = rotary_dim_of(d.head_dim, n.position.partial_rotary);
    if (n.position.rotary_dim < 2 || n.position.rotary_dim % 2)
      c.fail("partial_rotary_factor",
             "gives " + std::to_string(n.position.rotary_dim) + " rotated dims per head; need an even number ≥ 2");
    // The rotation runs over the first rotary_dim entries of each head: never past its end.
    if (n.position.rotary_dim > d.head_dim)
      c.fail("head_dim", "gives " + std::to_string(n.position.rotary_dim) +
                             " rotary dims, wider than the attention's head_dim " + std::to_string(d.head_dim));
    if (!(n.position.theta > 0)) c.fail("rope_theta", "must be positive");
  }
  return n;
}

}  // namespace nexus::registry
