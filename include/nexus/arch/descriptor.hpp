// The architecture descriptor `n`: one aggregate that describes a decoder-only transformer
// completely. Fields are grouped by concern; each enum below is a shape-critical choice that the
// CPU and CUDA backends turn into a compile-time trait, everything else is a runtime value.
// Reflection (printing, comparison, hashing, JSON) comes from nexus/reflect: fields are listed
// only here.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/arch/enums.hpp"
#include "nexus/reflect/reflect.hpp"

namespace nexus {

struct dims_desc {
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;  // == num_heads: MHA; 1: MQA; else GQA
  std::int64_t head_dim = 0;      // may differ from hidden_size / num_heads
  std::int64_t intermediate_size = 0;
  std::int64_t max_positions = 0;

  bool operator==(const dims_desc&) const = default;
};

struct norm_desc {
  norm_kind kind = norm_kind::rms;
  double eps = 1e-6;
  bool unit_offset = false;  // weight applied as (1 + w), computed in fp32 (Gemma)
  norm_placement placement = norm_placement::pre;
  qk_norm qk = qk_norm::none;  // same kind, eps and offset as the block norms

  bool operator==(const norm_desc&) const = default;
};

struct rope_scaling_desc {
  rope_scaling type = rope_scaling::none;
  double factor = 1.0;
  std::int64_t original_max_positions = 0;               // pre-extension context (yarn, llama3, longrope, dynamic)
  double attention_factor = 1.0;                         // cos/sin multiplier, resolved as transformers resolves it
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  bool truncate = true;                                  // yarn: round the correction range
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  std::vector<double> short_factor, long_factor;         // longrope, one per rotated pair

  bool operator==(const rope_scaling_desc&) const = default;
};

/// RoPE of the sliding-window layers where it differs from the other layers' (Gemma 3: its own
/// base, rope_local_base_freq, unscaled; transformers 5 allows any scaling there).
struct sliding_rope_desc {
  double theta = 0.0;  // 0: sliding layers rotate like the others
  rope_scaling_desc scaling;

  bool operator==(const sliding_rope_desc&) const = default;
};

struct position_desc {
  position_kind kind = position_kind::rope;
  rope_style style = rope_style::neox;
  double theta = 10000.0;
  double partial_rotary = 1.0;  // fraction of head_dim rotated
  std::int64_t rotary_dim = 0;  // int(head_dim · partial_rotary): what the modeling code uses
  rope_scaling_desc scaling;
  sliding_rope_desc sliding;                   // rope_for(position, layer kind) picks (nexus/arch/rope.hpp)
  std::vector<std::int64_t> unrotated_layers;  // layers that apply no rotary embedding at all (SmolLM3's NoPE)

  bool operator==(const position_desc&) const = default;
};

struct attention_desc {
  double scale = 0.0;                   // multiplies q·k; head_dim^-0.5 unless the family overrides it
  double softcap = 0.0;                 // 0: none; else tanh(s / cap) · cap before the mask
  std::int64_t sliding_window = 0;      // 0: none; window includes the current token
  std::vector<layer_attention> layers;  // per layer: full or sliding
  double qkv_clip = 0.0;                // 0: none; else q, k, v clamped to ±clip after projection (OLMo)
  bool qkv_bias = false;
  bool o_bias = false;

  bool operator==(const attention_desc&) const = default;
};

struct mlp_desc {
  bool gated = true;  // act(gate(x)) * up(x), else act(up(x))
  activation act = activation::silu;
  bool bias = false;  // on every MLP projection

  bool operator==(const mlp_desc&) const = default;
};

/// A sparse mixture-of-experts MLP: a router picks `top_k` of `num_experts` gated MLPs per token
/// (each of `expert_intermediate` width, the descriptor's activation), optionally plus a shared expert.
struct moe_desc {
  std::int64_t num_experts = 0;  // 0: every layer has the dense MLP
  std::int64_t top_k = 0;
  std::int64_t expert_intermediate = 0;
  router_order order = router_order::softmax_topk;
  bool norm_topk = false;                  // softmax_topk: the k weights renormalised to sum to 1
  std::int64_t shared_intermediate = 0;    // 0: no shared expert (Qwen-2-MoE: one, always active)
  bool shared_gate = false;                // the shared expert scaled by sigmoid(shared_gate · x) (Qwen-2-MoE)
  std::vector<std::int64_t> dense_layers;  // layers that keep the dense MLP (decoder_sparse_step, mlp_only_layers)

  bool operator==(const moe_desc&) const = default;
};

struct embedding_desc {
  bool tied = false;   // lm_head shares the token embedding
  double scale = 1.0;  // multiplies embeddings (Gemma: sqrt(hidden_size))

  bool operator==(const embedding_desc&) const = default;
};

struct head_desc {
  bool bias = false;           // lm_head bias (Phi)
  double final_softcap = 0.0;  // 0: none
  double logit_scale = 1.0;    // multiplies the logits (Cohere)

  bool operator==(const head_desc&) const = default;
};

/// The value `n`: a complete description of one decoder-only architecture.
struct descriptor {
  std::string family;  // the registry entry that produced it (config.json model_type)
  dims_desc dims;
  norm_desc norm;
  position_desc position;
  attention_desc attention;
  mlp_desc mlp;
  moe_desc moe;
  residual_form residual = residual_form::sequential;
  double residual_scale = 1.0;  // multiplies attention and MLP outputs before they join the residual (Granite)
  embedding_desc embedding;
  head_desc head;

  bool operator==(const descriptor&) const = default;

  bool is_gqa() const { return dims.num_kv_heads != dims.num_heads; }
  /// Whether layer `l` has the sparse mixture-of-experts MLP.
  bool is_sparse_layer(std::int64_t l) const {
    return moe.num_experts > 0 &&
           std::find(moe.dense_layers.begin(), moe.dense_layers.end(), l) == moe.dense_layers.end();
  }
  /// Whether layer `l` rotates q and k.
  bool rotates(std::int64_t l) const {
    return position.kind == position_kind::rope &&
           std::find(position.unrotated_layers.begin(), position.unrotated_layers.end(), l) ==
               position.unrotated_layers.end();
  }
};

}  // namespace nexus

template <>
struct std::hash<nexus::descriptor> {
  std::size_t operator()(const nexus::descriptor& d) const { return nexus::reflect::hash(d); }
};
