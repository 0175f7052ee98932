// The bridges' kernels (declarations: include/nexus/backend/cuda/bridge_launch.hpp), fp32: linear layers
// and their gradients, LayerNorm (+ GELU) forward and backward per row, attention per (query, head), the
// adapter's gated residual. Norm and activation rules are those of nexus/math, as on the CPU.
#include "common.cuh"
#include "nexus/backend/cuda/bridge_launch.hpp"

namespace nexus::cuda::bridge_kernels {

namespace {

constexpr int max_per_thread = 16;  // row kernels: a row of at most 16 · 256 values

int grid_for(long long count) { return int(std::min<long long>((count + 255) / 256, 65535)); }

int row_threads(int width) {
  const int threads = width >= 256 ? 256 : ((width + 31) / 32) * 32;
  if (width > threads * max_per_thread)
    throw unsupported_error("cuda bridge", "row width " + std::to_string(width) + " above the " +
                                               std::to_string(threads * max_per_thread) + " a row kernel holds");
  return threads;
}

/// Maximum over the block (as block_sum in common.cuh).
__device__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : -INFINITY;
  return warp_max(v);
}

// ---- linear layers: one thread per output value, the inner sum in a fixed order ------------------

__global__ void linear_kernel(const float* x, int n, int in, const float* w, const float* b, int out, float* y,
                              bool accumulate) {
  for (long long t = blockIdx.x * 256ll + threadIdx.x; t < (long long)n * out; t += gridDim.x * 256ll) {
    const long long r = t / out, o = t % out;
    float s = 0;
    for (int i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
    if (b) s += b[o];
    y[t] = accumulate ? y[t] + s : s;
  }
}

__global__ void linear_dx_kernel(const float* dy, int n, int in, const float* w, int out, float* dx) {
  for (long long t = blockIdx.x * 256ll + threadIdx.x; t < (long long)n * in; t += gridDim.x * 256ll) {
    const long long r = t / in, i = t % in;
    float s = 0;
    for (int o = 0; o < out; ++o) s += dy[r * out + o] * w[(long long)o * in + i];
    dx[t] += s;
  }
}

__global__ void linear_dw_kernel(const float* x, const float* dy, int n, int in, int out, float* dw, float* db) {
  for (long long t = blockIdx.x * 256ll + threadIdx.x; t < (long long)out * in; t += gridDim.x * 256ll) {
    const long long o = t / in, i = t % in;
    if (dw) {
      float s = 0;
      for (int r = 0; r < n; ++r) s += dy[(long long)r * out + o] * x[(long long)r * in + i];
      dw[t] += s;
    }
    if (db && i == 0) {
      float s = 0;
      for (int r = 0; r < n; ++r) s += dy[(long long)r * out + o];
      db[o] += s;
    }
  }
}

// ---- LayerNorm (+ GELU), one block per row ----------------------------------------------------------

__global__ void layer_norm_kernel(const float* x, int width, const float* w, const float* b, float eps, float* y,
                                  float* gelu_out) {
  const long long row = (long long)blockIdx.x * width;
  const int count = (width - int(threadIdx.x) + int(blockDim.x) - 1) / int(blockDim.x);
  float t[max_per_thread];
  for (int k = 0; k < count; ++k) t[k] = x[row + threadIdx.x + k * blockDim.x];
  math::normalize_row<norm_kind::layer>(t, count, 1, threadIdx.x, blockDim.x, width,
                                        math::norm_params{w, b, eps, false}, block_reduce{});
  for (int k = 0; k < count; ++k) {
    y[row + threadIdx.x + k * blockDim.x] = t[k];
    if (gelu_out) gelu_out[row + threadIdx.x + k * blockDim.x] = math::gelu(t[k]);
  }
}

/// dx += the norm's backward; work rows: g (the gradient of the norm's output) and x̂, for the parameters.
__global__ void layer_norm_backward_kernel(const float* x, const float* dy, const float* gelu_in, int width,
                                           const float* w, float eps, float* dx, float* g_out, float* xhat_out) {
  const long long row = (long long)blockIdx.x * width;
  const int count = (width - int(threadIdx.x) + int(blockDim.x) - 1) / int(blockDim.x);
  float tx[max_per_thread], tg[max_per_thread], th[max_per_thread], td[max_per_thread];
  for (int k = 0; k < count; ++k) {
    const long long at = row + threadIdx.x + k * blockDim.x;
    tx[k] = th[k] = x[at];
    tg[k] = gelu_in ? dy[at] * math::gelu_grad(gelu_in[at]) : dy[at];
  }
  math::normalize_row<norm_kind::layer>(th, count, 1, threadIdx.x, blockDim.x, width,
                                        math::norm_params{nullptr, nullptr, eps, false}, block_reduce{});
  math::normalize_row_backward<norm_kind::layer>(tx, tg, td, static_cast<float*>(nullptr), static_cast<float*>(nullptr),
                                                 count, 1, threadIdx.x, blockDim.x, width,
                                                 math::norm_params{w, nullptr, eps, false}, block_reduce{});
  for (int k = 0; k < count; ++k) {
    const long long at = row + threadIdx.x + k * blockDim.x;
    dx[at] += td[k];
    g_out[at] = tg[k];
    xhat_out[at] = th[k];
  }
}

/// dw[i] += Σ_rows g · x̂, db[i] += Σ_rows g: one thread per column.
__global__ void norm_param_grads_kernel(const float* g, const float* xhat, int n, int width, float* dw, float* db) {
  const int i = blockIdx.x * 256 + threadIdx.x;
  if (i >= width) return;
  float sw = 0, sb = 0;
  for (int r = 0; r < n; ++r) {
    sw += g[(long long)r * width + i] * xhat[(long long)r * width + i];
    sb += g[(long long)r * width + i];
  }
  if (dw) dw[i] += sw;
  if (db) db[i] += sb;
}

// ---- attention: one block per (query, head); scores in shared memory ----------------------------------

__global__ void attend_kernel(const float* q, int nq, const float* k, const float* v, int nk, int w, int heads,
                              float* p, float* o) {
  extern __shared__ float sc[];
  const int i = blockIdx.x, h = blockIdx.y, dh = w / heads;
  const float scale = 1.0f / ::sqrtf(float(dh));
  const float* qi = q + (long long)i * w + h * dh;
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) {
    float s = 0;
    for (int c = 0; c < dh; ++c) s += qi[c] * k[(long long)j * w + h * dh + c];
    sc[j] = s * scale;
    local_max = fmaxf(local_max, sc[j]);
  }
  const float max = block_max(local_max);
  float local_sum = 0;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) local_sum += sc[j] = ::expf(sc[j] - max);
  const float sum = block_sum(local_sum);
  float* pi = p + ((long long)h * nq + i) * nk;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) pi[j] = sc[j] = sc[j] / sum;
  __syncthreads();
  for (int c = threadIdx.x; c < dh; c += blockDim.x) {
    float s = 0;
    for (int j = 0; j < nk; ++j) s += sc[j] * v[(long long)j * w + h * dh + c];
    o[(long long)i * w + h * dh + c] = s;
  }
}

/// Per (query, head): ds = p · (dp − Σ p dp) · scale into work; dq += ds · k.
__global__ void attend_dq_kernel(const float* k, const float* v, int nq, int nk, int w, int heads, const float* p,
                                 const float* d_o, float* ds_out, float* dq) {
  extern __shared__ float sc[];
  const int i = blockIdx.x, h = blockIdx.y, dh = w / heads;
  const float scale = 1.0f / ::sqrtf(float(dh));
  const float* pi = p + ((long long)h * nq + i) * nk;
  const float* doi = d_o + (long long)i * w + h * dh;
  float local = 0;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) {
    float dp = 0;
    for (int c = 0; c < dh; ++c) dp += doi[c] * v[(long long)j * w + h * dh + c];
    sc[j] = dp;
    local += pi[j] * dp;
  }
  const float dot = block_sum(local);
  float* dsi = ds_out + ((long long)h * nq + i) * nk;
  for (int j = threadIdx.x; j < nk; j += blockDim.x) dsi[j] = sc[j] = pi[j] * (sc[j] - dot) * scale;
  __syncthreads();
  for (int c = threadIdx.x; c < dh; c += blockDim.x) {
    float s = 0;
    for (int j = 0; j < nk; ++j) s += sc[j] * k[(long long)j * w + h * dh + c];
    dq[(long long)i * w + h * dh + c] += s;
  }
}

/// Per (key, head): dk += Σ_i ds · q, dv += Σ_i p · do.
__global__ void attend_dkv_kernel(const float* q, int nq, int nk, int w, int heads, const float* p, const float* d_o,
                                  const float* ds, float* dk, float* dv) {
  const int j = blockIdx.x, h = blockIdx.y, dh = w / heads;
  for (int c = threadIdx.x; c < dh; c += blockDim.x) {
    float sk = 0, sv = 0;
    for (int i = 0; i < nq; ++i) {
      const long long at = ((long long)h * nq + i) * nk + j;
      sk += ds[at] * q[(long long)i * w + h * dh + c];
      sv += p[at] * d_o[(long long)i * w + h * dh + c];
    }
    dk[(long long)j * w + h * dh + c] += sk;
    dv[(long long)j * w + h * dh + c] += sv;
  }
}

// ---- the gated residual --------------------------------------------------------------------------

__global__ void gate_residual_kernel(const float* x, const float* z, const float* gate, long long count, float* y) {
  const float g = ::tanhf(gate[0]);
  for (long long t = blockIdx.x * 256ll + threadIdx.x; t < count; t += gridDim.x * 256ll) y[t] = x[t] + g * z[t];
}

__global__ void gate_residual_backward_kernel(const float* dy, const float* z, const float* gate, long long count,
                                              float* dx, float* dz) {
  const float g = ::tanhf(gate[0]);
  for (long long t = blockIdx.x * 256ll + threadIdx.x; t < count; t += gridDim.x * 256ll) {
    dx[t] += dy[t];
    dz[t] = g * dy[t];
  }
}

/// One block: dgate += (1 − tanh²(g)) · Σ dy · z.
__global__ void gate_grad_kernel(const float* dy, const float* z, const float* gate, long long count, float* dgate) {
  float s = 0;
  for (long long t = threadIdx.x; t < count; t += blockDim.x) s += dy[t] * z[t];
  s = block_sum(s);
  if (threadIdx.x == 0) {
    const float g = ::tanhf(gate[0]);
    dgate[0] += (1.0f - g * g) * s;
  }
}

__global__ void add_kernel(float* y, const float* x, float a, long long count) {
  for (long long t = blockIdx.x * 256ll + threadIdx.x; t < count; t += gridDim.x * 256ll) y[t] += a * x[t];
}

std::size_t scores_bytes(int nk) {
  const std::size_t bytes = std::size_t(nk) * sizeof(float);
  if (bytes > 48 * 1024)
    throw unsupported_error("cuda bridge", std::to_string(nk) + " keys: above the 12288 the attention kernel holds");
  return bytes;
}

}  // namespace

void linear(const float* x, int n, int in, const float* w, const float* b, int out, float* y, bool accumulate,
            cudaStream_t s) {
  linear_kernel<<<grid_for((long long)n * out), 256, 0, s>>>(x, n, in, w, b, out, y, accumulate);
  check_launch("bridge linear");
}

void linear_backward(const float* x, const float* dy, int n, int in, const float* w, int out, float* dx, float* dw,
                     float* db, cudaStream_t s) {
  if (dx) linear_dx_kernel<<<grid_for((long long)n * in), 256, 0, s>>>(dy, n, in, w, out, dx);
  if (dw || db) linear_dw_kernel<<<grid_for((long long)out * in), 256, 0, s>>>(x, dy, n, in, out, dw, db);
  check_launch("bridge linear backward");
}

void layer_norm(const float* x, int n, int width, const float* w, const float* b, float eps, float* y, float* gelu_out,
                cudaStream_t s) {
  layer_norm_kernel<<<n, row_threads(width), 0, s>>>(x, width, w, b, eps, y, gelu_out);
  check_launch("bridge layer_norm");
}

void layer_norm_backward(const float* x, const float* dy, const float* gelu_in, int n, int width, const float* w,
                         float eps, float* dx, float* dw, float* db, float* work, cudaStream_t s) {
  float* g = work;
  float* xhat = work + (long long)n * width;
  layer_norm_backward_kernel<<<n, row_threads(width), 0, s>>>(x, dy, gelu_in, width, w, eps, dx, g, xhat);
  if (dw || db) norm_param_grads_kernel<<<(width + 255) / 256, 256, 0, s>>>(g, xhat, n, width, dw, db);
  check_launch("bridge layer_norm backward");
}

void attend(const float* q, int nq, const float* k, const float* v, int nk, int w, int heads, float* p, float* o,
            cudaStream_t s) {
  attend_kernel<<<dim3(unsigned(nq), unsigned(heads)), 128, scores_bytes(nk), s>>>(q, nq, k, v, nk, w, heads, p, o);
  check_launch("bridge attend");
}

void attend_backward(const float* q, int nq, const float* k, const float* v, int nk, int w, int heads, const float* p,
                     const float* d_o, float* work, float* dq, float* dk, float* dv, cudaStream_t s) {
  attend_dq_kernel<<<dim3(unsigned(nq), unsigned(heads)), 128, scores_bytes(nk), s>>>(k, v, nq, nk, w, heads, p, d_o,
                                                                                      work, dq);
  attend_dkv_kernel<<<dim3(unsigned(nk), unsigned(heads)), 64, 0, s>>>(q, nq, nk, w, heads, p, d_o, work, dk, dv);
  check_launch("bridge attend backward");
}

void gate_residual(const float* x, const float* z, const float* gate, long long count, float* y, cudaStream_t s) {
  gate_residual_kernel<<<grid_for(count), 256, 0, s>>>(x, z, gate, count, y);
  check_launch("bridge gate_residual");
}

void gate_residual_backward(const float* dy, const float* z, const float* gate, long long count, float* dx, float* dz,
                            float* dgate, cudaStream_t s) {
  gate_residual_backward_kernel<<<grid_for(count), 256, 0, s>>>(dy, z, gate, count, dx, dz);
  gate_grad_kernel<<<1, 1024, 0, s>>>(dy, z, gate, count, dgate);
  check_launch("bridge gate_residual backward");
}

void add(float* y, const float* x, float a, long long count, cudaStream_t s) {
  add_kernel<<<grid_for(count), 256, 0, s>>>(y, x, a, count);
  check_launch("bridge add");
}

}  // namespace nexus::cuda::bridge_kernels
