// Mistral (MistralConfig / modeling_mistral, 4.57): Llama with a sliding window on every layer.
#pragma once

#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline descriptor parse_mistral(const config_reader& c) {
  auto n = parse_llama_like(c, {32000, 4096, 14336, 32, 32, 8, 4096 * 32});
  // `getattr(config, "head_dim", None) or hidden_size // num_attention_heads`: 0 also falls back
  if (const auto hd = c.get<std::int64_t>("head_dim", 0); hd != 0) n.dims.head_dim = hd;
  // Absent: 4096. null: no window. The modeling applies it to every layer (layer_types ignored).
  n.attention.sliding_window = c.field<std::int64_t>("sliding_window", 4096).value_or(0);
  // MistralConfig has no rope_scaling argument, but the modeling reads one passed through **kwargs.
  n.position.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  return finish(n, c);
}

// llama.cpp writes Mistral as "llama" (no sliding window); transformers reads such a file as mistral only when
// general.name is exactly "mistral" (registry::gguf_family).
inline constexpr family mistral_family{"mistral", parse_mistral, llama_tensors, "model.", llama_ignored, {},
                                       {},        &llama_gguf};

}  // namespace nexus::registry
