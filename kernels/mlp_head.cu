// MLP activation (gated: act(gate) · up), the logits epilogue (scale, softcap), and greedy
// arg-max with CUB.
#include <cub/device/device_segmented_reduce.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include "common.cuh"

namespace nexus::cuda {

template <class S, activation Act>
__global__ void activate_kernel(const float* in, std::int64_t rows, int inter, bool gated, S* h) {
  const std::int64_t total = rows * inter;
  for (std::int64_t t = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; t < total;
       t += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = t / inter, i = t % inter;
    h[t] = from_float<S>(gated ? math::activate<Act>(in[r * 2 * inter + i]) * in[r * 2 * inter + inter + i]
                               : math::activate<Act>(in[t]));
  }
}

void activate(const float* in, int rows, int inter, bool gated, activation act, void* h, precision p, cudaStream_t s) {
  const int blocks = int(std::min<std::int64_t>((std::int64_t(rows) * inter + 255) / 256, 65535));
  with_storage(p, [&](auto tag) {
    using S = decltype(tag);
    S* out = static_cast<S*>(h);
    visit_enum(act, [&](auto a) {
      activate_kernel<S, decltype(a)::value><<<blocks, 256, 0, s>>>(in, rows, inter, gated, out);
    });
  });
  check_launch("activate");
}

__global__ void finish_logits_kernel(float* logits, std::int64_t count, float scale, float cap) {
  for (std::int64_t t = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; t < count;
       t += std::int64_t(gridDim.x) * blockDim.x) {
    logits[t] = math::finish_logit(logits[t], scale, cap);
  }
}

void finish_logits(float* logits, std::int64_t count, float scale, float softcap, cudaStream_t s) {
  if (scale == 1.0f && softcap <= 0) return;
  finish_logits_kernel<<<int(std::min<std::int64_t>((count + 255) / 256, 65535)), 256, 0, s>>>(logits, count, scale,
                                                                                               softcap);
  check_launch("finish_logits");
}

namespace {
struct row_offset {
  int vocab;
  __host__ __device__ int operator()(int r) const { return r * vocab; }
};
__global__ void argmax_index_kernel(const cub::KeyValuePair<int, float>* pairs, int rows, int* out) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < rows) out[r] = pairs[r].key;
}
}  // namespace

std::size_t argmax_temp_bytes(int rows, int vocab) {
  std::size_t bytes = 0;
  const auto offsets = thrust::make_transform_iterator(thrust::make_counting_iterator(0), row_offset{vocab});
  check(cub::DeviceSegmentedReduce::ArgMax(nullptr, bytes, static_cast<const float*>(nullptr),
                                           static_cast<cub::KeyValuePair<int, float>*>(nullptr), rows, offsets,
                                           offsets + 1),
        "arg-max temp size");
  return bytes + std::size_t(rows) * sizeof(cub::KeyValuePair<int, float>) + 256;
}

void argmax(const float* logits, int rows, int vocab, int* out, void* temp, std::size_t temp_bytes, cudaStream_t s) {
  auto* pairs = static_cast<cub::KeyValuePair<int, float>*>(temp);
  void* cub_temp = static_cast<char*>(temp) + ((std::size_t(rows) * sizeof(*pairs) + 255) / 256) * 256;
  std::size_t bytes = temp_bytes - ((std::size_t(rows) * sizeof(*pairs) + 255) / 256) * 256;
  const auto offsets = thrust::make_transform_iterator(thrust::make_counting_iterator(0), row_offset{vocab});
  check(cub::DeviceSegmentedReduce::ArgMax(cub_temp, bytes, logits, pairs, rows, offsets, offsets + 1, s), "arg-max");
  argmax_index_kernel<<<(rows + 127) / 128, 128, 0, s>>>(pairs, rows, out);
  check_launch("argmax");
}

}  // namespace nexus::cuda
