// Phi-3 (Phi3Config / modeling_phi3, 4.57): Llama-like blocks with fused qkv_proj and
// gate_up_proj, longrope scaling (legacy "su"/"yarn" names), an optional window on every layer.
#pragma once

#include "nexus/registry/common.hpp"
#include "nexus/registry/family.hpp"
#include "nexus/registry/families/llama.hpp"

namespace nexus::registry {

inline constexpr auto phi3_tensors = concat(
    hf_embed,
    std::array<tensor_rule, 6>{{
        {"model.layers.{L}.input_layernorm", {"layers.{L}.attn_norm"}},
        {"model.layers.{L}.post_attention_layernorm", {"layers.{L}.mlp_norm"}},
        {"model.layers.{L}.self_attn.qkv_proj",
         {"layers.{L}.attn.q", "layers.{L}.attn.k", "layers.{L}.attn.v"},
         tensor_layout::fused_rows},
        {"model.layers.{L}.self_attn.o_proj", {"layers.{L}.attn.o"}},
        {"model.layers.{L}.mlp.gate_up_proj", {"layers.{L}.mlp.gate", "layers.{L}.mlp.up"}, tensor_layout::fused_rows},
        {"model.layers.{L}.mlp.down_proj", {"layers.{L}.mlp.down"}},
    }},
    hf_head);

inline descriptor parse_phi3(const config_reader& c) {
  auto n = parse_llama_like(c, {32064, 3072, 8192, 32, 32, std::nullopt, 4096});
  n.norm.eps = c.get<double>("rms_norm_eps", 1e-5);
  n.dims.head_dim = c.field<std::int64_t>("head_dim", n.dims.head_dim).value_or(0);  // getattr in modeling
  n.position.partial_rotary = c.get<double>("partial_rotary_factor", 1.0);
  if (c.has("rope_scaling") && !c.is_null("rope_scaling")) {
    // Phi3Config._rope_scaling_validation: exactly {type, short_factor, long_factor}, type longrope
    // (after renaming the legacy "su" and "yarn").
    // transformers 5 (rope_parameters) checks only the type, read from rope_type.
    const auto rs = c.sub("rope_scaling");
    const bool v5 = from_rope_parameters(c);
    const auto type = rs.field<std::string>(v5 ? "rope_type" : "type");
    if ((!v5 && rs.json().size() != 3) || !type || (*type != "longrope" && *type != "su" && *type != "yarn"))
      c.unsupported(
          "rope_scaling", rs.json().dump(),
          "{\"type\": \"longrope\" (or legacy \"su\"/\"yarn\"), \"short_factor\": [...], \"long_factor\": [...]}");
    auto renamed = c.json();
    renamed["rope_scaling"][v5 ? "rope_type" : "type"] = "longrope";
    const config_reader r(renamed, c.where());
    n.position.scaling = parse_rope_scaling(r, n, rope_type_key::rope_type_first, 4096);
  }
  n.attention.sliding_window = c.get<std::int64_t>("sliding_window", 0);  // None by default; all layers
  return finish(n, c);
}

// llama.cpp keeps Phi-3's fused tensors: attn_qkv, and ffn_up holding gate and up. Its phi3.sliding_window (0 for
// none) and rope.scaling.original_context_length are not read: transformers maps neither (Phi3Config defaults).
inline constexpr auto phi3_gguf_tensors =
    concat(gguf_embed, gguf_pre_norms,
           std::array<tensor_rule, 4>{{
               {"blk.{L}.attn_qkv",
                {"layers.{L}.attn.q", "layers.{L}.attn.k", "layers.{L}.attn.v"},
                tensor_layout::fused_rows},
               {"blk.{L}.attn_output", {"layers.{L}.attn.o"}},
               {"blk.{L}.ffn_up", {"layers.{L}.mlp.gate", "layers.{L}.mlp.up"}, tensor_layout::fused_rows},
               {"blk.{L}.ffn_down", {"layers.{L}.mlp.down"}},
           }},
           gguf_head);
inline constexpr gguf_format phi3_gguf{"phi3", gguf_common_keys, phi3_gguf_tensors};

inline constexpr family phi3_family{"phi3", parse_phi3, phi3_tensors, "model.", llama_ignored, {}, {}, &phi3_gguf};

}  // namespace nexus::registry
