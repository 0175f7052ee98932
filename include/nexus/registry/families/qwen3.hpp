// Qwen-3 (Qwen3Config / modeling_qwen3, 4.57): Qwen-2 with per-head RMS qk-norm, head_dim 128 by
// default, and attention_bias on all four projections instead of fixed q/k/v biases.
#pragma once

#include "nexus/registry/families/qwen2.hpp"

namespace nexus::registry {

inline descriptor parse_qwen3(const config_reader& c) {
  auto n = parse_qwen_like(c, 128);
  n.attention.qkv_bias = n.attention.o_bias = c.get<bool>("attention_bias", false);
  n.norm.qk = qk_norm::per_head;
  return finish(n, c);
}

// attention.key_length -> head_dim as llama.cpp reads it. transformers 5 maps no key_length for qwen3 and keeps
// Qwen3Config's head_dim = 128, so it cannot load a file whose heads differ from that; here they load.
inline constexpr auto qwen3_gguf_keys =
    concat_keys(gguf_common_keys, std::array<gguf_key, 1>{{{"attention.key_length", "head_dim"}}});
inline constexpr gguf_format qwen3_gguf{"qwen3", qwen3_gguf_keys, qwen_gguf_tensors};

inline constexpr family qwen3_family{"qwen3", parse_qwen3, llama_tensors, "model.", llama_ignored, {}, {}, &qwen3_gguf};

}  // namespace nexus::registry
