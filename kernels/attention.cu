// Causal attention over the KV cache with an online softmax (FlashAttention's recurrence), for
// prefill (many query rows) and decode (one row: the keys are split across blocks and the partial
// results combined — flash-decoding). Sliding window, softcap and GQA head grouping included.
// One warp per key at a time: each lane holds head_dim / 32 elements of q and of the accumulator.
#include <cfloat>

#include "common.cuh"

#if defined(NEXUS_CUDA_BUILD_CONFIG)
#include "nexus_cuda_build_config.h"
#endif
#ifndef NEXUS_CUDA_HEAD_DIMS
#define NEXUS_CUDA_HEAD_DIMS(X) X(16) X(32) X(64) X(80) X(96) X(128) X(256)
#endif

namespace nexus::cuda {

constexpr int attention_warps = 4;

template <class S, int HD>
__global__ void attention_kernel(attention_args a) {
  constexpr int E = (HD + 31) / 32;
  const int h = blockIdx.x, r = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int group = a.heads / a.kv_heads, g = h / group, kw = a.kv_heads * HD;
  const int pos = *a.first + r;
  const int lo = a.window > 0 ? max(0, pos - a.window + 1) : 0;
  const int n = pos - lo + 1, per_split = (n + a.splits - 1) / a.splits;
  const int begin = lo + split * per_split, end = min(pos + 1, begin + per_split);

  float q[E], acc[E];
  const float* qrow = a.q + (std::int64_t(r) * a.heads + h) * HD;
  for (int e = 0; e < E; ++e) {
    const int i = lane + 32 * e;
    q[e] = i < HD ? qrow[i] : 0.0f;
    acc[e] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  const S* K = static_cast<const S*>(a.k_cache);
  const S* V = static_cast<const S*>(a.v_cache);
  for (int j = begin + warp; j < end; j += attention_warps) {
    const S* kj = K + std::int64_t(j) * kw + g * HD;
    float dot = 0.0f;
    for (int e = 0; e < E; ++e) {
      const int i = lane + 32 * e;
      if (i < HD) dot += q[e] * to_float(kj[i]);
    }
    float score = warp_sum(dot) * a.scale;
    score = math::softcap(score, a.softcap);
    const float m_new = fmaxf(m, score), correction = __expf(m - m_new), p = __expf(score - m_new);
    l = l * correction + p;
    const S* vj = V + std::int64_t(j) * kw + g * HD;
    for (int e = 0; e < E; ++e) {
      const int i = lane + 32 * e;
      acc[e] = acc[e] * correction + (i < HD ? p * to_float(vj[i]) : 0.0f);
    }
    m = m_new;
  }

  // Combine the warps.
  __shared__ float s_m[attention_warps], s_l[attention_warps], s_acc[attention_warps][HD];
  if (lane == 0) s_m[warp] = m, s_l[warp] = l;
  for (int e = 0; e < E; ++e)
    if (lane + 32 * e < HD) s_acc[warp][lane + 32 * e] = acc[e];
  __syncthreads();
  float M = -FLT_MAX;
  for (int w = 0; w < attention_warps; ++w) M = fmaxf(M, s_m[w]);
  float L = 0.0f;
  for (int w = 0; w < attention_warps; ++w) L += s_l[w] * __expf(s_m[w] - M);
  for (int i = threadIdx.x; i < HD; i += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < attention_warps; ++w) o += s_acc[w][i] * __expf(s_m[w] - M);
    if (a.splits == 1) {
      static_cast<S*>(a.out)[(std::int64_t(r) * a.heads + h) * HD + i] = from_float<S>(o / L);
    } else {
      float* part = a.work + ((std::int64_t(r) * a.heads + h) * a.splits + split) * (HD + 2);
      part[2 + i] = o;
      if (i == 0) part[0] = M, part[1] = L;
    }
  }
}

template <class S, int HD>
__global__ void combine_splits_kernel(attention_args a) {
  const int h = blockIdx.x, r = blockIdx.y;
  const float* parts = a.work + (std::int64_t(r) * a.heads + h) * a.splits * (HD + 2);
  float M = -FLT_MAX;
  for (int s = 0; s < a.splits; ++s)
    if (parts[s * (HD + 2) + 1] > 0) M = fmaxf(M, parts[s * (HD + 2)]);
  float L = 0.0f;
  for (int s = 0; s < a.splits; ++s)
    if (parts[s * (HD + 2) + 1] > 0) L += parts[s * (HD + 2) + 1] * __expf(parts[s * (HD + 2)] - M);
  for (int i = threadIdx.x; i < HD; i += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < a.splits; ++s)
      if (parts[s * (HD + 2) + 1] > 0) o += parts[s * (HD + 2) + 2 + i] * __expf(parts[s * (HD + 2)] - M);
    static_cast<S*>(a.out)[(std::int64_t(r) * a.heads + h) * HD + i] = from_float<S>(o / L);
  }
}

template <class S, int HD>
void launch_attention(const attention_args& a, int rows, cudaStream_t s) {
  attention_kernel<S, HD><<<dim3(a.heads, rows, a.splits), 32 * attention_warps, 0, s>>>(a);
  if (a.splits > 1) combine_splits_kernel<S, HD><<<dim3(a.heads, rows), 128, 0, s>>>(a);
}

void attention(const attention_args& a, int rows, precision p, cudaStream_t s) {
  with_storage(p, [&](auto tag) {
    using S = decltype(tag);
    switch (a.head_dim) {  // one switch per axis: the head dim (CMake NEXUS_CUDA_HEAD_DIMS)
#define NEXUS_HEAD_DIM_CASE(D)          \
  case D:                               \
    launch_attention<S, D>(a, rows, s); \
    return;
      NEXUS_CUDA_HEAD_DIMS(NEXUS_HEAD_DIM_CASE)
#undef NEXUS_HEAD_DIM_CASE
      default:
        throw unsupported_error("cuda",
                                "head_dim " + std::to_string(a.head_dim) +
                                    " has no attention kernel in this build (CMake option NEXUS_CUDA_HEAD_DIMS)");
    }
  });
  check_launch("attention");
}

}  // namespace nexus::cuda
