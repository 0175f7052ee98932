// The benchmarks' own device code: the copy kernel that measures the device's usable HBM bandwidth
// (the ceiling every bandwidth-bound figure is divided by), and fills for the inputs.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "device_kernels.hpp"

namespace nexus::bench {

namespace {

/// 16-byte loads and stores, grid-stride: each byte is read once and written once.
__global__ void copy_kernel(const int4* __restrict__ src, int4* __restrict__ dst, std::size_t n) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = src[i];
}

__device__ float hash_uniform(std::uint64_t i, std::uint64_t seed) {  // in [-1, 1)
  std::uint64_t z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(z >> 40) / float(1ull << 23) - 1.0f;
}

__global__ void fill_bf16_kernel(__nv_bfloat16* p, std::size_t n, float scale, std::uint64_t seed) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = __float2bfloat16_rn(scale * hash_uniform(i, seed));
}

__global__ void fill_f32_kernel(float* p, std::size_t n, float scale, float offset, std::uint64_t seed) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = offset + scale * hash_uniform(i, seed);
}

}  // namespace

cudaError_t launch_copy(const void* src, void* dst, std::size_t bytes, int blocks, int threads, cudaStream_t s) {
  copy_kernel<<<blocks, threads, 0, s>>>(static_cast<const int4*>(src), static_cast<int4*>(dst), bytes / 16);
  return cudaGetLastError();
}

cudaError_t fill_bf16(void* p, std::size_t n, float scale, std::uint64_t seed, cudaStream_t s) {
  fill_bf16_kernel<<<1024, 256, 0, s>>>(static_cast<__nv_bfloat16*>(p), n, scale, seed);
  return cudaGetLastError();
}

cudaError_t fill_f32(float* p, std::size_t n, float scale, float offset, std::uint64_t seed, cudaStream_t s) {
  fill_f32_kernel<<<1024, 256, 0, s>>>(p, n, scale, offset, seed);
  return cudaGetLastError();
}

}  // namespace nexus::bench
