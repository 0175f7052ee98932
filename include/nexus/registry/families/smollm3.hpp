// SmolLM3 (SmolLM3Config / modeling_smollm3, 4.57): Llama whose layers listed 0 in no_rope_layers
// apply no rotary embedding (every 4th by default, no_rope_layer_interval), with an optional window
// on the layers layer_types names sliding (by default the NoPE ones, when use_sliding_window).
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline descriptor parse_smollm3(const config_reader& c) {
  auto n = parse_llama_like(c, {128256, 2048, 11008, 36, 16, 4, 32768, true});
  n.position.theta = c.get<double>("rope_theta", 2000000.0);
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.mlp.bias = c.get<bool>("mlp_bias", false);
  const auto layers = n.dims.num_layers;
  std::vector<bool> rotates;
  if (c.has("no_rope_layers") && !c.is_null("no_rope_layers")) {
    if (!c.json().at("no_rope_layers").is_array()) c.fail("no_rope_layers", "must be a list of 0/1");
    for (const auto& v : c.json().at("no_rope_layers")) {
      if (!v.is_number_integer() && !v.is_boolean()) c.fail("no_rope_layers", "must be a list of 0/1");
      rotates.push_back(v.is_boolean() ? v.get<bool>() : v.get<std::int64_t>() != 0);
    }
    if (std::int64_t(rotates.size()) != layers)
      c.fail("no_rope_layers",
             "has " + std::to_string(rotates.size()) + " entries for " + std::to_string(layers) + " layers");
  } else {  // int((layer_idx + 1) % no_rope_layer_interval != 0)
    const auto interval = c.get<std::int64_t>("no_rope_layer_interval", 4);
    if (interval <= 0) c.fail("no_rope_layer_interval", "must be positive");
    for (std::int64_t i = 0; i < layers; ++i) rotates.push_back((i + 1) % interval != 0);
  }
  for (std::int64_t i = 0; i < layers; ++i)
    if (!rotates[std::size_t(i)]) n.position.unrotated_layers.push_back(i);
  const bool use = c.get<bool>("use_sliding_window", false);
  const auto window = c.field<std::int64_t>("sliding_window", std::nullopt);
  if (c.has("layer_types") && !c.is_null("layer_types")) {
    n.attention.layers = parse_layer_types(c, layers);
  } else {
    for (std::int64_t i = 0; i < layers; ++i)
      n.attention.layers.push_back(use && window && !rotates[std::size_t(i)] ? layer_attention::sliding
                                                                             : layer_attention::full);
  }
  // `config.sliding_window if config.use_sliding_window and layer_types[i] == "sliding_attention"`
  n.attention.sliding_window = use ? window.value_or(0) : 0;
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::type_first);
  return finish(n, c);
}

inline constexpr family smollm3_family{"smollm3", parse_smollm3, llama_tensors, "model.", llama_ignored};

}  // namespace nexus::registry
