// Embedding gather, and the fused residual-add + norm that runs between every two sublayers.
#include "common.cuh"

namespace nexus::cuda {

template <class S>
__global__ void embed_kernel(const std::int32_t* ids, const S* tok, const S* pos, const int* first, float scale,
                             int hidden, float* x) {
  const int r = blockIdx.x;
  const std::int64_t id = ids[r];
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = to_float(tok[id * hidden + i]) * scale;
    if (pos) v += to_float(pos[std::int64_t(*first + r) * hidden + i]);
    x[std::int64_t(r) * hidden + i] = v;
  }
}

void embed(const std::int32_t* ids, int rows, const void* tok, const void* pos, const int* first, float scale,
           int hidden, precision p, float* x, cudaStream_t s) {
  with_storage(p, [&](auto tag) {
    using S = decltype(tag);
    embed_kernel<S>
        <<<rows, 256, 0, s>>>(ids, static_cast<const S*>(tok), static_cast<const S*>(pos), first, scale, hidden, x);
  });
  check_launch("embed");
}

constexpr int max_per_thread = 32;  // hidden ≤ 32 · 1024

/// The row step (nexus/math/norm.hpp) on this thread's elements t[k] = row[threadIdx.x + k · blockDim.x].
template <norm_kind Kind>
__device__ void normalize_here(float* t, int count, int hidden, const math::norm_params& p) {
  math::normalize_row<Kind>(t, count, 1, threadIdx.x, blockDim.x, hidden, p, block_reduce{});
}

template <class S, norm_kind Kind>
__global__ void residual_norm_kernel(residual_norm_args a, int hidden, norm_config cfg) {
  const std::int64_t row = std::int64_t(blockIdx.x) * hidden;
  const int count = (hidden - int(threadIdx.x) + int(blockDim.x) - 1) / int(blockDim.x);
  float x[max_per_thread], t[max_per_thread];
  for (int k = 0; k < count; ++k) x[k] = a.x[row + threadIdx.x + k * blockDim.x];
  for (int b = 0; b < 2; ++b) {
    const float* branch = b ? a.branch2 : a.branch1;
    const norm_params& post = b ? a.post2 : a.post1;
    if (!branch) continue;
    for (int k = 0; k < count; ++k) t[k] = branch[row + threadIdx.x + k * blockDim.x];
    if (post.present) normalize_here<Kind>(t, count, hidden, params_of(post, cfg));
    for (int k = 0; k < count; ++k) x[k] += t[k];
  }
  if (a.branch1 || a.branch2)
    for (int k = 0; k < count; ++k) a.x[row + threadIdx.x + k * blockDim.x] = x[k];
  for (int o = 0; o < 2; ++o) {
    S* out = static_cast<S*>(o ? a.out_m : a.out_a);
    const norm_params& n = o ? a.norm_m : a.norm_a;
    if (!out) continue;
    for (int k = 0; k < count; ++k) t[k] = x[k];
    if (n.present) normalize_here<Kind>(t, count, hidden, params_of(n, cfg));
    for (int k = 0; k < count; ++k) out[row + threadIdx.x + k * blockDim.x] = from_float<S>(t[k]);
  }
}

void residual_norm(const residual_norm_args& a, int rows, int hidden, const norm_config& cfg, precision p,
                   cudaStream_t s) {
  const int threads = hidden >= 1024 ? 1024 : ((hidden + 31) / 32) * 32;
  if (hidden > threads * max_per_thread)
    throw unsupported_error("cuda", "hidden size " + std::to_string(hidden) + " is above the " +
                                        std::to_string(threads * max_per_thread) +
                                        " the fused residual-norm kernel holds per row");
  with_storage(p, [&](auto tag) {
    using S = decltype(tag);
    visit_enum(cfg.kind, [&](auto kind) {
      residual_norm_kernel<S, decltype(kind)::value><<<rows, threads, 0, s>>>(a, hidden, cfg);
    });
  });
  check_launch("residual_norm");
}

}  // namespace nexus::cuda
