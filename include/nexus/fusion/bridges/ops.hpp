// The building blocks of the bridges (nexus/fusion/bridges/bridge.hpp), forward and backward, on row-major
// arrays of a scalar S (fp32 to train, fp64 for the gradient checks): linear layers, LayerNorm, the
// activation, multi-head attention. Norm and activation rules come from nexus/math, the same the CUDA
// kernels call. Every backward *adds* to the gradients it is given (null: not wanted), so branches
// that meet (residuals, self-attention's three uses of one input) need no extra code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "nexus/backend/cpu/blas.hpp"
#include "nexus/math/elementwise.hpp"
#include "nexus/math/norm.hpp"

namespace nexus::fusion::bridge_ops {

using i64 = std::int64_t;

/// C[M, N] = beta · C + A · op(B): A [M, K] row-major; op(B) = B [K, N] (b_trans false) or Bᵀ with B
/// [N, K] (b_trans true); with a_trans, A is given as [K, M]. fp32 goes to OpenBLAS's sgemm when it
/// is there and the product is large enough to gain from it; otherwise plain loops.
template <class S>
void gemm(bool a_trans, bool b_trans, i64 M, i64 N, i64 K, const S* A, const S* B, S beta, S* C) {
  if constexpr (std::is_same_v<S, float>) {
    const auto& lib = cpu::blas();
    if (lib.sgemm && M * N * K >= 32768) {
      lib.sgemm(lib.row_major, a_trans ? lib.trans : lib.no_trans, b_trans ? lib.trans : lib.no_trans, int(M), int(N),
                int(K), 1.0f, A, int(a_trans ? M : K), B, int(b_trans ? K : N), beta, C, int(N));
      return;
    }
  }
  if (beta == S(0)) std::fill(C, C + M * N, S(0));
  else if (beta != S(1))
    for (i64 i = 0; i < M * N; ++i) C[i] *= beta;
  for (i64 m = 0; m < M; ++m) {
    S* c = C + m * N;
    if (b_trans) {
      for (i64 n = 0; n < N; ++n) {
        S s = 0;
        const S* b = B + n * K;
        for (i64 k = 0; k < K; ++k) s += (a_trans ? A[k * M + m] : A[m * K + k]) * b[k];
        c[n] += s;
      }
    } else {
      for (i64 k = 0; k < K; ++k) {
        const S a = a_trans ? A[k * M + m] : A[m * K + k];
        const S* b = B + k * N;
        for (i64 n = 0; n < N; ++n) c[n] += a * b[n];
      }
    }
  }
}

/// y [n, out] = x [n, in] · wᵀ (w [out, in]) + b (null: none).
template <class S>
void linear(const S* x, i64 n, i64 in, const S* w, const S* b, i64 out, S* y) {
  gemm<S>(false, true, n, out, in, x, w, S(0), y);
  if (b)
    for (i64 r = 0; r < n; ++r)
      for (i64 o = 0; o < out; ++o) y[r * out + o] += b[o];
}

/// The backward of linear: dx += dy · w, dw += dyᵀ · x, db += Σ_rows dy (each where not null).
template <class S>
void linear_backward(const S* x, const S* dy, i64 n, i64 in, const S* w, i64 out, S* dx, S* dw, S* db) {
  if (dx) gemm<S>(false, false, n, in, out, dy, w, S(1), dx);
  if (dw) gemm<S>(true, false, out, in, n, dy, x, S(1), dw);
  if (db)
    for (i64 r = 0; r < n; ++r)
      for (i64 o = 0; o < out; ++o) db[o] += dy[r * out + o];
}

/// LayerNorm (weight and bias) of each row: the rule of math::normalize_row.
template <class S>
void layer_norm(const S* x, i64 n, i64 width, const S* w, const S* b, S eps, S* y) {
  const math::basic_norm_params<S> p{w, b, eps, false};
  std::copy(x, x + n * width, y);
  for (i64 r = 0; r < n; ++r) math::normalize_row<norm_kind::layer>(y + r * width, width, p);
}

/// The backward of layer_norm: dx += ∂, dw += Σ dy · x̂, db += Σ dy.
template <class S>
void layer_norm_backward(const S* x, const S* dy, i64 n, i64 width, const S* w, S eps, S* dx, S* dw, S* db) {
  const math::basic_norm_params<S> p{w, nullptr, eps, false};
  std::vector<S> row(static_cast<std::size_t>(width));
  for (i64 r = 0; r < n; ++r) {
    math::normalize_row_backward<norm_kind::layer>(x + r * width, dy + r * width, row.data(), dw, db, width, p);
    if (dx)
      for (i64 i = 0; i < width; ++i) dx[r * width + i] += row[std::size_t(i)];
  }
}

/// Multi-head attention without a mask: for each head h (width dh = w / heads),
/// o[i] = Σ_j softmax_j(q[i]·k[j] / √dh) v[j]. q [nq, w], k and v [nk, w]; p [heads, nq, nk] keeps the
/// probabilities for the backward.
template <class S>
void attend(const S* q, i64 nq, const S* k, const S* v, i64 nk, i64 w, i64 heads, S* p, S* o) {
  const i64 dh = w / heads;
  const S scale = S(1) / math::sqrt_of(S(dh));
  std::fill(o, o + nq * w, S(0));
  for (i64 h = 0; h < heads; ++h)
    for (i64 i = 0; i < nq; ++i) {
      S* pi = p + (h * nq + i) * nk;
      const S* qi = q + i * w + h * dh;
      S max = -INFINITY;
      for (i64 j = 0; j < nk; ++j) {
        S s = 0;
        for (i64 c = 0; c < dh; ++c) s += qi[c] * k[j * w + h * dh + c];
        pi[j] = s * scale;
        max = std::max(max, pi[j]);
      }
      S sum = 0;
      for (i64 j = 0; j < nk; ++j) sum += pi[j] = math::exp_of(pi[j] - max);
      S* oi = o + i * w + h * dh;
      for (i64 j = 0; j < nk; ++j) {
        pi[j] /= sum;
        for (i64 c = 0; c < dh; ++c) oi[c] += pi[j] * v[j * w + h * dh + c];
      }
    }
}

/// The backward of attend: dq, dk, dv += from do (each [rows, w]).
template <class S>
void attend_backward(const S* q, i64 nq, const S* k, const S* v, i64 nk, i64 w, i64 heads, const S* p, const S* d_o,
                     S* dq, S* dk, S* dv) {
  const i64 dh = w / heads;
  const S scale = S(1) / math::sqrt_of(S(dh));
  std::vector<S> ds(static_cast<std::size_t>(nk));
  for (i64 h = 0; h < heads; ++h)
    for (i64 i = 0; i < nq; ++i) {
      const S* pi = p + (h * nq + i) * nk;
      const S* doi = d_o + i * w + h * dh;
      S dot = 0;  // Σ_j p_ij dp_ij
      for (i64 j = 0; j < nk; ++j) {
        S dp = 0;
        for (i64 c = 0; c < dh; ++c) {
          dp += doi[c] * v[j * w + h * dh + c];
          dv[j * w + h * dh + c] += pi[j] * doi[c];
        }
        ds[std::size_t(j)] = dp;
        dot += pi[j] * dp;
      }
      for (i64 j = 0; j < nk; ++j) {
        const S g = pi[j] * (ds[std::size_t(j)] - dot) * scale;
        for (i64 c = 0; c < dh; ++c) {
          dq[i * w + h * dh + c] += g * k[j * w + h * dh + c];
          dk[j * w + h * dh + c] += g * q[i * w + h * dh + c];
        }
      }
    }
}

/// The weights of one attention: q from the query rows (wq null: the query rows are q), k and v from the
/// key rows, the output projection wo (+ bo).
template <class S>
struct mha_weights {
  const S *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *bo = nullptr;
};
template <class S>
struct mha_grads {
  S *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *bo = nullptr;
};
/// What the forward keeps for the backward.
template <class S>
struct mha_tape {
  std::vector<S> q, k, v, p, o;
};

/// y [nq, out] = wo · attend(wq xq, wk xk, wv xk) + bo; xq [nq, dq], xk [nk, dk]; inner width w.
template <class S>
void mha(const S* xq, i64 nq, i64 dq, const S* xk, i64 nk, i64 dk, const mha_weights<S>& m, i64 w, i64 heads, i64 out,
         mha_tape<S>& t, S* y) {
  t.q.resize(std::size_t(nq * w));
  if (m.wq) linear(xq, nq, dq, m.wq, static_cast<const S*>(nullptr), w, t.q.data());
  else std::copy(xq, xq + nq * w, t.q.begin());
  t.k.resize(std::size_t(nk * w));
  t.v.resize(std::size_t(nk * w));
  linear(xk, nk, dk, m.wk, static_cast<const S*>(nullptr), w, t.k.data());
  linear(xk, nk, dk, m.wv, static_cast<const S*>(nullptr), w, t.v.data());
  t.p.resize(std::size_t(heads * nq * nk));
  t.o.resize(std::size_t(nq * w));
  attend(t.q.data(), nq, t.k.data(), t.v.data(), nk, w, heads, t.p.data(), t.o.data());
  linear(t.o.data(), nq, w, m.wo, m.bo, out, y);
}

/// The backward of mha: dxq, dxk and the weights' gradients += from dy (each where not null).
template <class S>
void mha_backward(const S* xq, i64 nq, i64 dq, const S* xk, i64 nk, i64 dk, const mha_weights<S>& m, i64 w, i64 heads,
                  i64 out, const mha_tape<S>& t, const S* dy, S* dxq, S* dxk, const mha_grads<S>& g) {
  std::vector<S> d_o(std::size_t(nq * w)), d_q(std::size_t(nq * w)), d_k(std::size_t(nk * w)), d_v(std::size_t(nk * w));
  linear_backward(t.o.data(), dy, nq, w, m.wo, out, d_o.data(), g.wo, g.bo);
  attend_backward(t.q.data(), nq, t.k.data(), t.v.data(), nk, w, heads, t.p.data(), d_o.data(), d_q.data(), d_k.data(),
                  d_v.data());
  if (m.wq) linear_backward(xq, d_q.data(), nq, dq, m.wq, w, dxq, g.wq, static_cast<S*>(nullptr));
  else if (dxq)
    for (i64 i = 0; i < nq * w; ++i) dxq[i] += d_q[std::size_t(i)];
  linear_backward(xk, d_k.data(), nk, dk, m.wk, w, dxk, g.wk, static_cast<S*>(nullptr));
  linear_backward(xk, d_v.data(), nk, dk, m.wv, w, dxk, g.wv, static_cast<S*>(nullptr));
}

}  // namespace nexus::fusion::bridge_ops
