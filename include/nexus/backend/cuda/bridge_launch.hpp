// Host-side declarations of the bridges' CUDA launchers (definitions in kernels/bridge.cu): the forward
// and backward building blocks of nexus/fusion/bridges/ops.hpp on fp32 device arrays, row-major, the
// same rules (math/norm.hpp, math/elementwise.hpp). Backward launchers add to their gradients (null:
// not wanted), without atomics: every sum runs in one thread or one block, in a fixed order.
// nexus/fusion/bridges/bridge_cuda.hpp composes them into the bridge kinds.
#pragma once

#include <cuda_runtime_api.h>

namespace nexus::cuda::bridge_kernels {

/// y [n, out] = x [n, in] · wᵀ + b (b null: none); accumulate: y += that instead.
void linear(const float* x, int n, int in, const float* w, const float* b, int out, float* y, bool accumulate,
            cudaStream_t s);
/// dx [n, in] += dy · w; dw [out, in] += dyᵀ · x; db [out] += Σ_rows dy (each null: skipped).
void linear_backward(const float* x, const float* dy, int n, int in, const float* w, int out, float* dx, float* dw,
                     float* db, cudaStream_t s);

/// One block per row: y = LayerNorm(x; w, b); where gelu_out is given, also gelu_out = gelu(y) (the MLP's
/// norm and activation in one pass).
void layer_norm(const float* x, int n, int width, const float* w, const float* b, float eps, float* y, float* gelu_out,
                cudaStream_t s);
/// The backward of layer_norm: dy is the gradient of the norm's output, or, with gelu_in (the norm's
/// output, which GELU read), of GELU's output. dx += ...; dw, db += (rows summed in a second pass);
/// work: 2 · n · width floats.
void layer_norm_backward(const float* x, const float* dy, const float* gelu_in, int n, int width, const float* w,
                         float eps, float* dx, float* dw, float* db, float* work, cudaStream_t s);

/// Multi-head attention without a mask, one block per (query, head): o [nq, w] = softmax(q kᵀ/√dh) v;
/// p [heads, nq, nk] keeps the probabilities.
void attend(const float* q, int nq, const float* k, const float* v, int nk, int w, int heads, float* p, float* o,
            cudaStream_t s);
/// dq, dk, dv += from d_o; work: heads · nq · nk floats.
void attend_backward(const float* q, int nq, const float* k, const float* v, int nk, int w, int heads, const float* p,
                     const float* d_o, float* work, float* dq, float* dk, float* dv, cudaStream_t s);

/// The gated residual of Flamingo's adapter: y = x + tanh(gate[0]) · z.
void gate_residual(const float* x, const float* z, const float* gate, long long count, float* y, cudaStream_t s);
/// Its backward: dx += dy, dz = tanh(g) · dy, dgate[0] += (1 − tanh²(g)) · Σ dy · z.
void gate_residual_backward(const float* dy, const float* z, const float* gate, long long count, float* dx, float* dz,
                            float* dgate, cudaStream_t s);

/// y += a · x.
void add(float* y, const float* x, float a, long long count, cudaStream_t s);

}  // namespace nexus::cuda::bridge_kernels
