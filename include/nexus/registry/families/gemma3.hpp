// Gemma 3, text (Gemma3TextConfig / Gemma3ForCausalLM, modeling_gemma3, 4.57): Gemma-2's sandwich
// norms and query_pre_attn_scalar, plus per-head qk-norm with (1 + w), a pattern of sliding-window
// and global layers, and two RoPE bases: rope_theta with rope_scaling on global layers,
// rope_local_base_freq unscaled on sliding ones. Softcaps default to None.
//
// `gemma3` (Gemma3Config / Gemma3ForConditionalGeneration) wraps the same decoder in a
// vision-language model: its text_config is a Gemma3TextConfig, and its checkpoint holds the text
// weights under another prefix beside the vision tower and projector.
#pragma once

#include <cmath>

#include "nexus/registry/families/gemma2.hpp"

namespace nexus::registry {

inline constexpr auto gemma3_text_tensors = concat(gemma2_tensors, hf_qk_norm);

/// Gemma 3's RoPE: 4.x keys (rope_theta, rope_scaling, rope_local_base_freq), or transformers 5's
/// rope_parameters per layer type, each object read like a flat rope_parameters (a missing type is
/// default; a missing rope_theta falls back to the 4.x key, then to the class default).
inline void parse_gemma3_rope(const config_reader& c, descriptor& n) {
  auto& p = n.position;
  p.theta = c.get<double>("rope_theta", 1'000'000.0);
  require_rope_type_beside_type(c);  // no copy of "type" over "rope_type", unlike Llama's
  p.scaling = parse_rope_scaling(c, n, rope_type_key::rope_type_first);
  p.sliding.theta = c.get<double>("rope_local_base_freq", 10'000.0);
  if (!(p.sliding.theta > 0)) c.fail("rope_local_base_freq", "must be positive");
  if (!c.has("rope_parameters") || c.is_null("rope_parameters")) return;
  const auto rp = c.sub("rope_parameters");
  // A flat object is what other families use; Gemma3TextConfig (4.57 and 5.x alike) ignores it
  // and runs default RoPE, which is surely not what its author meant: refuse it by name.
  if (!is_per_layer_type_rope(rp.json()))
    c.unsupported("rope_parameters", rp.json().dump().substr(0, 200),
                  "one object per layer type: {\"full_attention\": {...}, \"sliding_attention\": {...}}");
  if (c.has("rope_scaling") && !c.is_null("rope_scaling"))
    c.fail("rope_scaling", "and rope_parameters are both set; keep one");
  parse_per_layer_type_rope(c, n);
}

inline descriptor parse_gemma3_text(const config_reader& c) {
  auto n = parse_gemma_like(c, {262208, 2304, 9216, 26, 8, 4, 131072, true}, "hidden_activation");
  n.norm.placement = norm_placement::sandwich;
  n.norm.qk = qk_norm::per_head;  // q_norm / k_norm over head_dim, Gemma3RMSNorm like the others
  n.attention.scale = parse_query_pre_attn_scalar(c, 256.0);
  n.attention.softcap = parse_softcap(c, "attn_logit_softcapping", std::nullopt);
  n.head.final_softcap = parse_softcap(c, "final_logit_softcapping", std::nullopt);
  // A bidirectional encoder (EmbeddingGemma's setting), not a causal decoder.
  if (c.get<bool>("use_bidirectional_attention", false)) c.unsupported("use_bidirectional_attention", "true", "false");
  // Gemma3TextModel builds a sliding-window mask for every model, and refuses a None window.
  const auto window = c.field<std::int64_t>("sliding_window", 4096);
  if (!window || *window <= 0)
    c.fail("sliding_window", "must be a positive number (transformers cannot run Gemma 3 without one)");
  n.attention.sliding_window = *window;
  if (c.has("layer_types") && !c.is_null("layer_types")) {
    n.attention.layers = parse_layer_types(c, n.dims.num_layers);
  } else {  // `"sliding_attention" if bool((i + 1) % sliding_window_pattern)`, pattern 6 by default
    const auto pattern = c.get<std::int64_t>("sliding_window_pattern", 6);
    if (pattern <= 0) c.fail("sliding_window_pattern", "must be positive");
    for (std::int64_t i = 0; i < n.dims.num_layers; ++i)
      n.attention.layers.push_back((i + 1) % pattern ? layer_attention::sliding : layer_attention::full);
  }
  parse_gemma3_rope(c, n);
  return finish(n, c);
}

/// The text part of a Gemma3Config: its text_config (absent or null: Gemma3TextConfig()).
/// The descriptor's family is gemma3_text: the decoder is exactly a Gemma3ForCausalLM's, so a
/// gemma3 checkpoint and the text-only checkpoint of the same weights compare equal.
inline descriptor parse_gemma3(const config_reader& c) {
  static const nlohmann::json empty = nlohmann::json::object();
  const bool has_text = c.has("text_config") && !c.is_null("text_config");
  if (has_text && !c.json().at("text_config").is_object()) c.fail("text_config", "must be an object");
  const config_reader text(has_text ? c.json().at("text_config") : empty, c.where() + ": text_config");
  auto n = parse_gemma3_text(text);
  n.family = "gemma3_text";
  return n;
}

inline constexpr std::string_view gemma3_text_ignored[] = {".rotary_emb.inv_freq", ".rotary_emb_local.inv_freq"};

// Gemma3ForConditionalGeneration: transformers' state_dict (and 5.x files) name the decoder
// model.language_model.*, 4.x files language_model.model.* and language_model.lm_head.
inline constexpr prefix_rename gemma3_renames[] = {
    {"model.", "model.language_model."},
    {"model.", "language_model.model."},
    {"lm_head", "lm_head"},
    {"lm_head", "language_model.lm_head"},
};
// The vision tower and the multimodal projector are weights, but of the image path, which a text
// decoder never reads: ignored (known, deliberately not loaded), not unused (unexplained).
inline constexpr std::string_view gemma3_vision_prefixes[] = {"vision_tower.", "multi_modal_projector.",
                                                              "model.vision_tower.", "model.multi_modal_projector."};

// GGUF (llama.cpp's Gemma3Model): every RMSNorm weight, q/k norms included, stored as 1 + w; rope.freq_base the
// global base. query_pre_attn_scalar and the layer pattern are not written: Gemma3TextConfig's defaults (256, every
// 6th layer global) apply, as in transformers (llama.cpp hard-codes the same pattern). rope.freq_base_swa (written by
// newer converters) is not read: transformers 5 ignores it and keeps rope_local_base_freq = 10000, the value of the
// released models. The descriptor's family is gemma3_text, as transformers loads these files.
inline constexpr std::array<tensor_rule, 2> gguf_gemma3_qk_norm{{
    {"blk.{L}.attn_q_norm", {"layers.{L}.attn.q_norm"}, tensor_layout::plus_one},
    {"blk.{L}.attn_k_norm", {"layers.{L}.attn.k_norm"}, tensor_layout::plus_one},
}};
inline constexpr auto gemma3_gguf_tensors =
    concat(gguf_embed, gguf_sandwich_norms, gguf_attention, gguf_gemma3_qk_norm, gguf_gated_mlp, gguf_gemma_head);
inline constexpr auto gemma3_gguf_keys =
    concat_keys(gemma_gguf_keys, std::array<gguf_key, 2>{{
                                     {"attention.sliding_window", "sliding_window"},
                                     {"final_logit_softcapping", "final_logit_softcapping"},
                                 }});
inline constexpr gguf_format gemma3_gguf{"gemma3", gemma3_gguf_keys, gemma3_gguf_tensors};

inline constexpr family gemma3_text_family{
    "gemma3_text", parse_gemma3_text, gemma3_text_tensors, "model.", gemma3_text_ignored, {}, {}, &gemma3_gguf};
inline constexpr family gemma3_family{
    "gemma3", parse_gemma3, gemma3_text_tensors, "", gemma3_text_ignored, gemma3_renames, gemma3_vision_prefixes};

}  // namespace nexus::registry
