// After the fused QKV projection: clip, qk-norm, RoPE, and the append of k and v to the cache,
// in one kernel per row. Works in place on the fp32 projection output.
#include "common.cuh"

namespace nexus::cuda {

/// Normalises `width` contiguous values at v with the whole block (qk-norm, full width).
template <norm_kind Kind>
__device__ void block_normalize(float* v, int width, const norm_params& n, const norm_config& cfg) {
  float mean = 0;
  if constexpr (Kind != norm_kind::rms) {
    float s = 0;
    for (int i = threadIdx.x; i < width; i += blockDim.x) s += v[i];
    mean = block_sum(s) / float(width);
  }
  float ss = 0;
  for (int i = threadIdx.x; i < width; i += blockDim.x) ss += (v[i] - mean) * (v[i] - mean);
  const float inv = rsqrtf(block_sum(ss) / float(width) + cfg.eps);
  for (int i = threadIdx.x; i < width; i += blockDim.x) {
    v[i] = math::norm_affine((v[i] - mean) * inv, n.weight, n.bias, i, cfg.unit_offset);
  }
  __syncthreads();
}

/// Normalises each head of v ([heads, hd]) with one warp per head (qk-norm, per head).
template <norm_kind Kind>
__device__ void warp_normalize_heads(float* v, int heads, int hd, const norm_params& n, const norm_config& cfg) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int h = warp; h < heads; h += warps) {
    float* x = v + h * hd;
    float mean = 0;
    if constexpr (Kind != norm_kind::rms) {
      float s = 0;
      for (int i = lane; i < hd; i += 32) s += x[i];
      mean = warp_sum(s) / float(hd);
    }
    float ss = 0;
    for (int i = lane; i < hd; i += 32) ss += (x[i] - mean) * (x[i] - mean);
    const float inv = rsqrtf(warp_sum(ss) / float(hd) + cfg.eps);
    for (int i = lane; i < hd; i += 32) {
      x[i] = math::norm_affine((x[i] - mean) * inv, n.weight, n.bias, i, cfg.unit_offset);
    }
  }
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
    warp_normalize_heads<Kind>(q, a.heads, hd, a.q_norm, cfg);
    warp_normalize_heads<Kind>(k, a.kv_heads, hd, a.k_norm, cfg);
  } else if (a.qk == qk_norm::full_width) {
    block_normalize<Kind>(q, qw, a.q_norm, cfg);
    block_normalize<Kind>(k, kw, a.k_norm, cfg);
  }
  const int pos = *a.first + r;
  if (a.position == position_kind::rope) {
    const int half = a.rotary_dim / 2;
    for (int t = threadIdx.x; t < (a.heads + a.kv_heads) * half; t += blockDim.x) {
      const int head = t / half, j = t % half;
      float* x = head < a.heads ? q + head * hd : k + (head - a.heads) * hd;
      const float angle = a.inv_freq[j] * float(pos);  // fp32, as transformers computes it
      const float c = cosf(angle) * a.attention_factor, sn = sinf(angle) * a.attention_factor;
      if constexpr (Style == rope_style::neox) math::rotate(x[j], x[j + half], c, sn);
      else math::rotate(x[2 * j], x[2 * j + 1], c, sn);
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
    const bool rms = cfg.kind == norm_kind::rms, neox = a.style == rope_style::neox;
    if (rms && neox) qkv_kernel<S, norm_kind::rms, rope_style::neox><<<rows, 256, 0, s>>>(a, cfg);
    else if (rms) qkv_kernel<S, norm_kind::rms, rope_style::interleaved><<<rows, 256, 0, s>>>(a, cfg);
    else if (neox) qkv_kernel<S, norm_kind::layer, rope_style::neox><<<rows, 256, 0, s>>>(a, cfg);
    else qkv_kernel<S, norm_kind::layer, rope_style::interleaved><<<rows, 256, 0, s>>>(a, cfg);
  });
  check_launch("qkv_rope_append");
}

}  // namespace nexus::cuda
