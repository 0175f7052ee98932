// Weights by canonical name, in fp32, unpacked from a bound checkpoint: dtype widened (GGUF blocks dequantised),
// Conv1D transposed, fused tensors split, llama.cpp's GGUF transformations undone. The CPU reference reads these;
// backends with their own layouts start from the same binding.
#pragma once

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "nexus/io/gguf_blocks.hpp"
#include "nexus/registry/binding.hpp"

namespace nexus {

struct tensor_f32 {
  shape_t shape;
  std::vector<float> data;
};

using weight_map = std::unordered_map<std::string, tensor_f32>;

namespace detail {

inline std::vector<float> widen(const tensor_view& t) {
  if (t.ggml_type && !(*t.ggml_type == gguf::tensor_type::f32 || *t.ggml_type == gguf::tensor_type::f16 ||
                       *t.ggml_type == gguf::tensor_type::bf16)) {
    const gguf::tensor_info info{t.name, *t.ggml_type, {t.shape.rbegin(), t.shape.rend()}, 0, t.data};
    return gguf::dequantize(info);
  }
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  const auto* p = t.data.data();
  switch (t.type) {
    case dtype::f32: std::memcpy(out.data(), p, out.size() * 4); break;
    case dtype::bf16:
    case dtype::f16:
      for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.type == dtype::bf16 ? bf16_to_float(h) : f16_to_float(h);
      }
      break;
    case dtype::i8:
    case dtype::u8:
    case dtype::i32:
    case dtype::i64:
      throw checkpoint_error(
          t.name, "dtype " + std::string(name_of(t.type)) + " is not a floating-point weight type (F32, F16, BF16)");
  }
  return out;
}

/// llama.cpp's LlamaModel.permute undone (transformers' reverse_permute): per head, rows stored as
/// [pair0.a, pair0.b, pair1.a, ...] go back to [all a; all b]. `cols` is 1 for a bias.
inline std::vector<float> rope_pairs_to_halves(const std::vector<float>& a, std::int64_t rows, std::int64_t cols,
                                               std::int64_t head_dim) {
  std::vector<float> out(a.size());
  const std::int64_t half = head_dim / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t head = r / head_dim, i = r % head_dim;  // stored row: pair i / 2, member i % 2
    const std::int64_t to = head * head_dim + (i % 2) * half + i / 2;
    std::copy_n(a.begin() + r * cols, cols, out.begin() + to * cols);
  }
  return out;
}

/// [rows, cols] -> [cols, rows]
inline std::vector<float> transpose(const std::vector<float>& a, std::int64_t rows, std::int64_t cols) {
  std::vector<float> out(a.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) out[std::size_t(c * rows + r)] = a[std::size_t(r * cols + c)];
  return out;
}

}  // namespace detail

/// Unpacks every bound tensor into its canonical tensors. `head_dim` is needed for the
/// per-head interleaved layout (GPT-NeoX).
inline weight_map unpack_weights(const registry::binding& b, const descriptor& n) {
  if (!b.complete()) throw checkpoint_error("checkpoint", "does not match its config: " + b.report());
  const auto canonical = canonical_tensors(n);
  weight_map out;
  for (const auto& [expected, view] : b.tensors) {
    auto data = detail::widen(view);
    const auto& shape = view.shape;
    const std::int64_t cols = shape.size() == 2 ? shape[1] : 1;
    auto rows_of = [&](const std::string& name) { return canonical.at(name)[0]; };
    switch (expected.layout) {
      case tensor_layout::same: out[expected.targets[0]] = {shape, std::move(data)}; break;
      case tensor_layout::rope_pairs_rows:
        out[expected.targets[0]] = {shape, detail::rope_pairs_to_halves(data, shape[0], cols, n.dims.head_dim)};
        break;
      case tensor_layout::plus_one:
        for (auto& x : data) x -= 1.0f;  // fp32, as transformers' `weights - 1`
        out[expected.targets[0]] = {shape, std::move(data)};
        break;
      case tensor_layout::transposed:
        out[expected.targets[0]] = {canonical.at(expected.targets[0]),
                                    shape.size() == 2 ? detail::transpose(data, shape[0], shape[1]) : std::move(data)};
        break;
      case tensor_layout::fused_cols_transposed:
        if (shape.size() == 2) data = detail::transpose(data, shape[0], shape[1]);  // now [Σout, in]
        [[fallthrough]];
      case tensor_layout::fused_rows: {
        const std::int64_t width =
            shape.size() == 2 ? (expected.layout == tensor_layout::fused_rows ? cols : shape[0]) : 1;
        std::size_t at = 0;
        for (const auto& t : expected.targets) {
          const auto n_el = std::size_t(rows_of(t) * width);
          out[t] = {canonical.at(t),
                    std::vector<float>(data.begin() + std::ptrdiff_t(at), data.begin() + std::ptrdiff_t(at + n_el))};
          at += n_el;
        }
        break;
      }
      case tensor_layout::fused_rows_per_kv_group: {
        // rows are [kv head][its group's query heads | k | v][head_dim]
        const std::int64_t hd = n.dims.head_dim, kv = n.dims.num_kv_heads, group = n.dims.num_heads / kv;
        std::vector<float> q, k, v;
        for (std::int64_t g = 0; g < kv; ++g) {
          const auto row0 = g * (group + 2) * hd;
          const auto at = [&](std::int64_t row) { return data.begin() + row * cols; };
          q.insert(q.end(), at(row0), at(row0 + group * hd));
          k.insert(k.end(), at(row0 + group * hd), at(row0 + (group + 1) * hd));
          v.insert(v.end(), at(row0 + (group + 1) * hd), at(row0 + (group + 2) * hd));
        }
        out[expected.targets[0]] = {canonical.at(expected.targets[0]), std::move(q)};
        out[expected.targets[1]] = {canonical.at(expected.targets[1]), std::move(k)};
        out[expected.targets[2]] = {canonical.at(expected.targets[2]), std::move(v)};
        break;
      }
      case tensor_layout::experts_rows: {  // expert by expert, each one's targets in order
        const std::int64_t width = shape.size() == 3 ? shape[2] : 1;
        std::size_t at = 0;
        for (const auto& t : expected.targets) {
          const auto n_el = std::size_t(rows_of(t) * width);
          out[t] = {canonical.at(t),
                    std::vector<float>(data.begin() + std::ptrdiff_t(at), data.begin() + std::ptrdiff_t(at + n_el))};
          at += n_el;
        }
        break;
      }
      case tensor_layout::fused_rows_per_head: {
        // rows are [head][q|k|v][head_dim]: gather each target's rows head by head
        const auto parts = expected.targets.size();
        const std::int64_t hd = n.dims.head_dim, heads = shape[0] / (std::int64_t(parts) * hd);
        for (std::size_t part = 0; part < parts; ++part) {
          std::vector<float> t;
          t.reserve(std::size_t(heads * hd * cols));
          for (std::int64_t h = 0; h < heads; ++h) {
            const auto row0 = (h * std::int64_t(parts) + std::int64_t(part)) * hd;
            t.insert(t.end(), data.begin() + row0 * cols, data.begin() + (row0 + hd) * cols);
          }
          out[expected.targets[part]] = {canonical.at(expected.targets[part]), std::move(t)};
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace nexus
