// Building blocks shared by the kernels: storage conversions, warp and block reductions, and the
// runtime -> compile-time switches (enums go through visit_enum, core/enum_table.hpp).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

#include "nexus/backend/cuda/launch.hpp"
#include "nexus/backend/cuda/status.hpp"
#include "nexus/math/elementwise.hpp"
#include "nexus/math/norm.hpp"

namespace nexus::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class S>
__device__ __forceinline__ S from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // `partial` may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

/// The reductions math::normalize_row takes: the sum over a warp, or over the block.
struct warp_reduce {
  __device__ float operator()(float v) const { return warp_sum(v); }
};
struct block_reduce {
  __device__ float operator()(float v) const { return block_sum(v); }
};

/// A norm's parameters as math::normalize_row takes them.
__host__ __device__ inline math::norm_params params_of(const norm_params& n, const norm_config& cfg) {
  return {n.weight, n.bias, cfg.eps, cfg.unit_offset};
}

/// Calls f(type_tag) with the storage type of `p`.
template <class F>
void with_storage(precision p, F&& f) {
  switch (p) {
    case precision::fp32: f(float{}); return;
    case precision::bf16: f(__nv_bfloat16{}); return;
    case precision::fp16: f(__half{}); return;
  }
  throw usage_error("cuda", "precision " + std::to_string(int(p)) + " is not a declared value");
}

}  // namespace nexus::cuda
