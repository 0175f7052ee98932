// The canonical tensors of an architecture: every weight the universal blocks read, named the
// same way for every family, with its shape derived from the descriptor. Family tables in
// nexus/registry map checkpoint names onto these.
//
//   embed.tokens.weight            [vocab, hidden]
//   embed.positions.weight         [max_positions, hidden]           learned positions only
//   layers.{L}.attn_norm.*         [hidden]                          pre-attention norm
//   layers.{L}.attn_post_norm.*    [hidden]                          sandwich / post placement
//   layers.{L}.mlp_norm.*          [hidden]                          pre-MLP norm
//   layers.{L}.mlp_post_norm.*     [hidden]                          sandwich / post placement
//   layers.{L}.attn.{q,k,v,o}.*    q [heads·hd, hidden], k/v [kv·hd, hidden], o [hidden, heads·hd]
//   layers.{L}.attn.{q,k}_norm.*   [hd] per head, [heads·hd] / [kv·hd] full width
//   layers.{L}.mlp.{gate,up,down}.* gate/up [inter, hidden], down [hidden, inter]
//   layers.{L}.mlp.router.weight   [experts, hidden]                  mixture-of-experts layers, instead of mlp.*
//   layers.{L}.mlp.experts.{E}.{gate,up,down}.weight   gate/up [expert_inter, hidden], down [hidden, expert_inter]
//   layers.{L}.mlp.shared.{gate,up,down}.weight        the shared expert (shared_intermediate wide)
//   layers.{L}.mlp.shared_gate.weight [1, hidden]
//   final_norm.*                   [hidden]
//   lm_head.*                      [vocab, hidden]                   weight absent when tied
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nexus/arch/descriptor.hpp"

namespace nexus {

using shape_t = std::vector<std::int64_t>;

/// canonical name -> shape, for one descriptor.
inline std::map<std::string, shape_t> canonical_tensors(const descriptor& n) {
  const auto& d = n.dims;
  std::map<std::string, shape_t> out;
  auto linear = [&](const std::string& name, std::int64_t rows, std::int64_t cols, bool bias) {
    out[name + ".weight"] = {rows, cols};
    if (bias) out[name + ".bias"] = {rows};
  };
  auto norm = [&](const std::string& name, std::int64_t width) {
    if (rule_of(n.norm.kind).weight) out[name + ".weight"] = {width};
    if (rule_of(n.norm.kind).bias) out[name + ".bias"] = {width};
  };

  out["embed.tokens.weight"] = {d.vocab_size, d.hidden_size};
  if (n.position.kind == position_kind::learned) out["embed.positions.weight"] = {d.max_positions, d.hidden_size};

  const auto has = norms_of(n.norm.placement, n.residual);
  const std::int64_t q_width = d.num_heads * d.head_dim, kv_width = d.num_kv_heads * d.head_dim;
  for (std::int64_t l = 0; l < d.num_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    if (has.attn) norm(p + "attn_norm", d.hidden_size);
    if (has.mlp) norm(p + "mlp_norm", d.hidden_size);
    if (has.attn_post) norm(p + "attn_post_norm", d.hidden_size);
    if (has.mlp_post) norm(p + "mlp_post_norm", d.hidden_size);
    linear(p + "attn.q", q_width, d.hidden_size, n.attention.qkv_bias);
    linear(p + "attn.k", kv_width, d.hidden_size, n.attention.qkv_bias);
    linear(p + "attn.v", kv_width, d.hidden_size, n.attention.qkv_bias);
    linear(p + "attn.o", d.hidden_size, q_width, n.attention.o_bias);
    if (n.norm.qk == qk_norm::per_head) {
      norm(p + "attn.q_norm", d.head_dim);
      norm(p + "attn.k_norm", d.head_dim);
    } else if (n.norm.qk == qk_norm::full_width) {
      norm(p + "attn.q_norm", q_width);
      norm(p + "attn.k_norm", kv_width);
    }
    if (n.is_sparse_layer(l)) {
      const auto& m = n.moe;
      linear(p + "mlp.router", m.num_experts, d.hidden_size, false);
      for (std::int64_t e = 0; e < m.num_experts; ++e) {
        const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
        linear(x + "gate", m.expert_intermediate, d.hidden_size, false);
        linear(x + "up", m.expert_intermediate, d.hidden_size, false);
        linear(x + "down", d.hidden_size, m.expert_intermediate, false);
      }
      if (m.shared_intermediate > 0) {
        linear(p + "mlp.shared.gate", m.shared_intermediate, d.hidden_size, false);
        linear(p + "mlp.shared.up", m.shared_intermediate, d.hidden_size, false);
        linear(p + "mlp.shared.down", d.hidden_size, m.shared_intermediate, false);
        if (m.shared_gate) linear(p + "mlp.shared_gate", 1, d.hidden_size, false);
      }
      continue;
    }
    if (n.mlp.gated) linear(p + "mlp.gate", d.intermediate_size, d.hidden_size, n.mlp.bias);
    linear(p + "mlp.up", d.intermediate_size, d.hidden_size, n.mlp.bias);
    linear(p + "mlp.down", d.hidden_size, d.intermediate_size, n.mlp.bias);
  }
  norm("final_norm", d.hidden_size);
  if (!n.embedding.tied) out["lm_head.weight"] = {d.vocab_size, d.hidden_size};
  if (n.head.bias) out["lm_head.bias"] = {d.vocab_size};
  return out;
}

}  // namespace nexus
