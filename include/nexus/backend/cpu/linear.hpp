// Linear layers on stored weights: y[t, o] = x[t, :] · W[o, :] + b[o], threaded over output rows.
// A few input rows (decoding) go through the kernels' dot products on the stored blocks; more
// (prefill) decode a tile of weight rows to fp32 once and hand it to OpenBLAS's sgemm (cpu/blas.hpp),
// which is faster than any hand loop over that many rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "nexus/backend/cpu/blas.hpp"
#include "nexus/backend/cpu/kernels.hpp"
#include "nexus/core/thread_pool.hpp"
#include "nexus/model/weights.hpp"

namespace nexus::cpu {

/// Input rows from which a layer runs as a GEMM rather than one dot product per row and output.
inline constexpr std::int64_t gemm_min_rows = 4;
/// Rows of a token tree from which its layers run as GEMMs too (fewer: linear_per_row, each row as
/// it would be alone).
inline constexpr std::int64_t tree_gemm_min_rows = 32;

/// Adds the bias to output columns o0..o0+count-1 of `rows` rows of `out`.
inline void add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t out, std::int64_t o0,
                     std::int64_t count) {
  if (bias)
    for (std::int64_t t = 0; t < rows; ++t)
      for (std::int64_t i = 0; i < count; ++i) y[t * out + o0 + i] += bias[o0 + i];
}

/// The linear layer with every input row computed exactly as it would be alone (one row: the kernels'
/// dot products); each weight row is decoded once for several input rows. What a batch of unrelated
/// rows (a token tree) runs, so that batching changes no result.
inline void linear_per_row(const float* x, std::int64_t rows, const stored_tensor& w, const float* bias, float* y,
                           thread_pool& pool, const kernel_table& k = kernels()) {
  const std::int64_t out = w.rows(), in = w.cols();
  constexpr std::int64_t chunk = 32;  // output rows per task: a multiple of the kernels' four
  pool.parallel_for((out + chunk - 1) / chunk, [&](std::int64_t task) {
    const std::int64_t o0 = task * chunk, count = std::min(chunk, out - o0);
    k.dot_rows_multi(w.type, w.row(o0), w.row_bytes(), count, x, rows, in, y + o0, out);
    add_bias(y, bias, rows, out, o0, count);
  });
}

inline void linear(const float* x, std::int64_t rows, const stored_tensor& w, const float* bias, float* y,
                   thread_pool& pool, const kernel_table& k = kernels()) {
  const std::int64_t out = w.rows(), in = w.cols();
  const std::size_t rb = w.row_bytes();
  const auto& lib = blas();
  if (rows < gemm_min_rows || !lib.sgemm) return linear_per_row(x, rows, w, bias, y, pool, k);
  // Four tiles of weight rows (sgemm packs the input rows again for every call: fewer, larger calls
  // are faster), at least 128 rows, at most 8 MiB decoded (the LM head of a large vocabulary). The
  // tiles do not depend on the thread count, nor then do the results: OpenBLAS picks its kernels by
  // shape.
  const std::int64_t max_tile = std::max<std::int64_t>(16, (std::int64_t(8) << 20) / (4 * in) / 16 * 16);
  const std::int64_t tile =
      std::clamp<std::int64_t>((out / 4 + 15) / 16 * 16, std::min<std::int64_t>(128, max_tile), max_tile);
  pool.parallel_for((out + tile - 1) / tile, [&](std::int64_t task) {
    const std::int64_t o0 = task * tile, count = std::min(tile, out - o0);
    const float* wt = nullptr;
    if (w.type == gguf::tensor_type::f32) {
      wt = reinterpret_cast<const float*>(w.row(o0));
    } else {
      thread_local std::vector<float> decoded;  // grows to the largest tile once, then is reused
      if (decoded.size() < std::size_t(count * in)) decoded.resize(std::size_t(count * in));
      k.decode_rows(w.type, w.row(o0), rb, count, in, decoded.data());
      wt = decoded.data();
    }
    lib.sgemm(lib.row_major, lib.no_trans, lib.trans, int(rows), int(count), int(in), 1.0f, x, int(in), wt, int(in),
              0.0f, y + o0, int(out));
    add_bias(y, bias, rows, out, o0, count);
  });
}

}  // namespace nexus::cpu
