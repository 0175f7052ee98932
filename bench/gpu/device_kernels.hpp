// Launchers of the benchmarks' own kernels (bench/gpu/device_kernels.cu).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace nexus::bench {

/// dst = src, `bytes` a multiple of 16, with `blocks` × `threads` threads (grid-stride).
cudaError_t launch_copy(const void* src, void* dst, std::size_t bytes, int blocks, int threads, cudaStream_t s);
/// n bf16 values uniform in [-scale, scale).
cudaError_t fill_bf16(void* p, std::size_t n, float scale, std::uint64_t seed, cudaStream_t s);
/// n floats uniform in [offset - scale, offset + scale).
cudaError_t fill_f32(float* p, std::size_t n, float scale, float offset, std::uint64_t seed, cudaStream_t s);

}  // namespace nexus::bench
