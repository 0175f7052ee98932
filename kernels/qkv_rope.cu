// After the fused QKV projection: clip, qk-norm, RoPE, and the append of k and v to the cache,
// in one kernel per row. Works in place on the fp32 projection output.
#include "common.cuh"

namespace nexus::cuda {

/// Normalises `width` contiguous values at v with the whole block (qk-norm, full width): the row
/// step of nexus/math/norm.hpp on this thread's elements v[threadIdx.x + k · blockDim.x].
template <norm_kind Kind>
__device__ void block_normalize(float* v, int width, const math::norm_params& p) {
  const int count = (width - int(threadIdx.x) + int(blockDim.x) - 1) / int(blockDim.x);
  math::normalize_row<Kind>(v + threadIdx.x, count > 0 ? count : 0, blockDim.x, threadIdx.x, blockDim.x, width, p,
                            block_reduce{});
  __syncthreads();
}

/// Normalises each head of v ([heads, hd]) with one warp per head (qk-norm, per head).
template <norm_kind Kind>
__device__ void warp_normalize_heads(float* v, int heads, int hd, const math::norm_params& p) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int count = (hd - lane + 31) / 32;
  for (int h = warp; h < heads; h += warps)
    math::normalize_row<Kind>(v + h * hd + lane, count, 32, lane, 32, hd, p, warp_reduce{});
  __syncthreads();
}

template <class S, norm_kind Kind, rope_style Style>
__global__ void qkv_kernel(qkv_args a, norm_config cfg) {
  const int r = blockIdx.x, hd = a.head_dim, qw = a.heads * hd, kw = a.kv_heads * hd;
  float* q = a.qkv + std::int64_t(r) * (qw + 2 * kw);
  float* k = q + qw;
  float* v = k + kw;
  if (a.clip > 0)  // OLMo: before qk-norm and RoPE
    for (int i = threadIdx.x; i < qw + 2 * kw; i += blockDim.x) q[i] = fminf(fmaxf(q[i], -a.clip), a.clip);
  __syncthreads();
  if (a.qk == qk_norm::per_head) {
    warp_normalize_heads<Kind>(q, a.heads, hd, params_of(a.q_norm, cfg));
    warp_normalize_heads<Kind>(k, a.kv_heads, hd, params_of(a.k_norm, cfg));
  } else if (a.qk == qk_norm::full_width) {
    block_normalize<Kind>(q, qw, params_of(a.q_norm, cfg));
    block_normalize<Kind>(k, kw, params_of(a.k_norm, cfg));
  }
  const int pos = *a.first + r;
  if (a.position == position_kind::rope) {
    const int half = a.rotary_dim / 2;
    for (int t = threadIdx.x; t < (a.heads + a.kv_heads) * half; t += blockDim.x) {
      const int head = t / half, j = t % half;
      float* x = head < a.heads ? q + head * hd : k + (head - a.heads) * hd;
      float c, sn;
      math::rope_cos_sin(a.inv_freq[j], pos, a.attention_factor, c, sn);
      math::rotate_pair<Style>(x, j, half, c, sn);
    }
    __syncthreads();
  }
  float* q_out = a.q_out + std::int64_t(r) * qw;
  for (int i = threadIdx.x; i < qw; i += blockDim.x) q_out[i] = q[i];
  S* kc = static_cast<S*>(a.k_cache) + std::int64_t(pos) * kw;
  S* vc = static_cast<S*>(a.v_cache) + std::int64_t(pos) * kw;
  for (int i = threadIdx.x; i < kw; i += blockDim.x) {
    kc[i] = from_float<S>(k[i]);
    vc[i] = from_float<S>(v[i]);
  }
}

void qkv_rope_append(const qkv_args& a, int rows, const norm_config& cfg, precision p, cudaStream_t s) {
  with_storage(p, [&](auto tag) {
    using S = decltype(tag);
    visit_enum(cfg.kind, [&](auto kind) {
      visit_enum(a.style, [&](auto style) {
        qkv_kernel<S, decltype(kind)::value, decltype(style)::value><<<rows, 256, 0, s>>>(a, cfg);
      });
    });
  });
  check_launch("qkv_rope_append");
}

}  // namespace nexus::cuda
