// The weights of one model on the device, uploaded once in storage precision through a pinned
// staging buffer: q|k|v and gate|up fused for one GEMM each, norms kept in fp32. Which tensors
// exist follows the descriptor (norms_of, the norm kind's rule), as on the CPU.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <vector>

#include "nexus/backend/cuda/launch.hpp"
#include "nexus/backend/cuda/status.hpp"
#include "nexus/model/weights.hpp"

namespace nexus::cuda {

struct device_layer {
  device_buffer wqkv, bqkv, wo, bo, wgu, bgu, wdown, bdown;
  norm_params attn_norm, attn_post, mlp_norm, mlp_post, q_norm, k_norm;
};

struct device_weights {
  precision p = precision::fp32;
  device_buffer tok, pos, lm_head, head_bias;
  std::vector<device_layer> layers;
  std::vector<device_buffer> norm_buffers;  // what the layers' norm_params point into
  norm_params final_norm;
  float embed_scale = 1;  // rounded to the storage precision, like transformers' normalizer tensor

  const device_buffer& head() const { return lm_head.get() ? lm_head : tok; }
};

namespace detail {

/// Uploads the concatenation of `parts` in precision `p` (fp32 values widened from the host).
inline device_buffer upload(const std::vector<const tensor_f32*>& parts, precision p, pinned_buffer& staging) {
  std::size_t count = 0;
  for (const auto* t : parts) count += t->data.size();
  const std::size_t bytes = count * bytes_of(p);
  void* host = staging.reserve(bytes);
  std::size_t at = 0;
  for (const auto* t : parts)
    for (const float v : t->data) switch (p) {
        case precision::fp32: static_cast<float*>(host)[at++] = v; break;
        case precision::bf16: static_cast<__nv_bfloat16*>(host)[at++] = __float2bfloat16_rn(v); break;
        case precision::fp16: static_cast<__half*>(host)[at++] = __float2half_rn(v); break;
      }
  device_buffer d(bytes);
  check(cudaMemcpy(d.get(), host, bytes, cudaMemcpyHostToDevice), "upload");
  return d;
}

}  // namespace detail

inline device_weights upload_weights(const descriptor& n, const weight_map& w, precision p) {
  device_weights out;
  out.p = p;
  pinned_buffer staging;
  auto find = [&](const std::string& name) -> const tensor_f32* {
    const auto it = w.find(name);
    return it == w.end() ? nullptr : &it->second;
  };
  auto need = [&](const std::string& name) -> const tensor_f32* {
    const auto* t = find(name);
    if (!t) throw checkpoint_error(name, "weight missing for this architecture");
    return t;
  };
  auto put = [&](const std::vector<const tensor_f32*>& parts) { return detail::upload(parts, p, staging); };
  auto put_fp32 = [&](const std::vector<const tensor_f32*>& parts) {
    return detail::upload(parts, precision::fp32, staging);
  };
  auto norm = [&](const std::string& name, bool present) {
    norm_params np;
    np.present = present;
    if (!present) return np;
    if (rule_of(n.norm.kind).weight)
      out.norm_buffers.push_back(put_fp32({need(name + ".weight")})),
          np.weight = out.norm_buffers.back().as<const float>();
    if (rule_of(n.norm.kind).bias)
      out.norm_buffers.push_back(put_fp32({need(name + ".bias")})), np.bias = out.norm_buffers.back().as<const float>();
    return np;
  };
  // Biases of fused projections: each part's bias, or zeros where one part has none.
  auto fused_bias = [&](const std::vector<std::string>& names, const std::vector<std::int64_t>& rows) -> device_buffer {
    bool any = false;
    for (const auto& name : names) any = any || find(name + ".bias");
    if (!any) return {};
    std::vector<tensor_f32> zeros;
    std::vector<const tensor_f32*> parts;
    zeros.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (const auto* b = find(names[i] + ".bias")) parts.push_back(b);
      else zeros.push_back({{rows[i]}, std::vector<float>(std::size_t(rows[i]), 0.0f)}), parts.push_back(&zeros.back());
    }
    return put_fp32(parts);
  };

  const auto& d = n.dims;
  out.tok = put({need("embed.tokens.weight")});
  if (n.position.kind == position_kind::learned) out.pos = put({need("embed.positions.weight")});
  out.embed_scale = float(n.embedding.scale);
  if (p == precision::bf16) out.embed_scale = __bfloat162float(__float2bfloat16_rn(out.embed_scale));
  if (p == precision::fp16) out.embed_scale = __half2float(__float2half_rn(out.embed_scale));
  const auto has = norms_of(n.norm.placement, n.residual);
  const bool qk = n.norm.qk != qk_norm::none;
  const std::int64_t qw = d.num_heads * d.head_dim, kw = d.num_kv_heads * d.head_dim;
  for (std::int64_t l = 0; l < d.num_layers; ++l) {
    const std::string pre = "layers." + std::to_string(l) + ".";
    device_layer L;
    L.attn_norm = norm(pre + "attn_norm", has.attn);
    L.mlp_norm = norm(pre + "mlp_norm", has.mlp);
    L.attn_post = norm(pre + "attn_post_norm", has.attn_post);
    L.mlp_post = norm(pre + "mlp_post_norm", has.mlp_post);
    L.q_norm = norm(pre + "attn.q_norm", qk);
    L.k_norm = norm(pre + "attn.k_norm", qk);
    L.wqkv = put({need(pre + "attn.q.weight"), need(pre + "attn.k.weight"), need(pre + "attn.v.weight")});
    L.bqkv = fused_bias({pre + "attn.q", pre + "attn.k", pre + "attn.v"}, {qw, kw, kw});
    L.wo = put({need(pre + "attn.o.weight")});
    L.bo = fused_bias({pre + "attn.o"}, {d.hidden_size});
    if (n.mlp.gated) {
      L.wgu = put({need(pre + "mlp.gate.weight"), need(pre + "mlp.up.weight")});
      L.bgu = fused_bias({pre + "mlp.gate", pre + "mlp.up"}, {d.intermediate_size, d.intermediate_size});
    } else {
      L.wgu = put({need(pre + "mlp.up.weight")});
      L.bgu = fused_bias({pre + "mlp.up"}, {d.intermediate_size});
    }
    L.wdown = put({need(pre + "mlp.down.weight")});
    L.bdown = fused_bias({pre + "mlp.down"}, {d.hidden_size});
    out.layers.push_back(std::move(L));
  }
  out.final_norm = norm("final_norm", true);
  if (!n.embedding.tied) out.lm_head = put({need("lm_head.weight")});
  out.head_bias = fused_bias({"lm_head"}, {d.vocab_size});
  return out;
}

}  // namespace nexus::cuda
