// Weights by canonical name, unpacked from a bound checkpoint: Conv1D transposed, fused tensors split,
// llama.cpp's GGUF transformations undone. Two forms from one set of layout rules:
// - stored_weights keep each matrix in its checkpoint format (f32, f16, bf16 or GGUF blocks), viewing the
//   mapped file where the layout allows and copying only rows that move; the CPU kernels compute on them;
// - weight_map widens everything to fp32 (the reference, and the input of backends with their own layouts).
#pragma once

#include <cstring>
#include <memory>
#include <span>
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

/// A tensor in its stored format: [rows, cols] (a vector is [n], one column per row), rows
/// row_bytes() apart, each a whole number of blocks of `type`.
struct stored_tensor {
  shape_t shape;
  gguf::tensor_type type = gguf::tensor_type::f32;
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;  // keeps `bytes` alive: the mapped checkpoint or an own buffer

  std::int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  std::int64_t cols() const { return shape.size() == 2 ? shape[1] : 1; }
  std::size_t row_bytes() const { return std::size_t(cols() / gguf::block_size(type) * gguf::type_size(type)); }
  const std::byte* row(std::int64_t r) const { return bytes.data() + std::size_t(r) * row_bytes(); }
  /// Row r as fp32 (cols() floats at out).
  void decode_row(std::int64_t r, float* out) const { gguf::dequantize_row(type, row(r), out, cols()); }
  tensor_f32 to_f32() const {
    tensor_f32 t{shape, std::vector<float>(std::size_t(rows() * cols()))};
    for (std::int64_t r = 0; r < rows(); ++r) decode_row(r, t.data.data() + r * cols());
    return t;
  }
};

using stored_weights = std::unordered_map<std::string, stored_tensor>;

/// Bytes of a new buffer, owned by the tensor.
inline stored_tensor own_bytes(shape_t shape, gguf::tensor_type type, std::vector<std::byte> bytes) {
  auto buf = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
  return {std::move(shape), type, {buf->data(), buf->size()}, buf};
}

/// An fp32 tensor as a stored one, taking its data.
inline stored_tensor own_f32(tensor_f32&& t) {
  auto buf = std::make_shared<const std::vector<float>>(std::move(t.data));
  return {std::move(t.shape),
          gguf::tensor_type::f32,
          {reinterpret_cast<const std::byte*>(buf->data()), buf->size() * sizeof(float)},
          buf};
}

namespace detail {

inline gguf::tensor_type stored_type(const tensor_view& t) {
  if (t.ggml_type) {
    if (!gguf::can_dequantize(*t.ggml_type)) gguf::dequantize_row(*t.ggml_type, nullptr, nullptr, 0, t.name);  // throws
    return *t.ggml_type;
  }
  switch (t.type) {
    case dtype::f32: return gguf::tensor_type::f32;
    case dtype::bf16: return gguf::tensor_type::bf16;
    case dtype::f16: return gguf::tensor_type::f16;
    case dtype::i8:
    case dtype::u8:
    case dtype::i32:
    case dtype::i64: break;
  }
  throw checkpoint_error(
      t.name, "dtype " + std::string(name_of(t.type)) + " is not a floating-point weight type (F32, F16, BF16)");
}

/// The rows of t in the order `from` gives (row i of the result is row from(i) of t).
template <class F>
stored_tensor gather_rows(const stored_tensor& t, shape_t shape, std::int64_t count, F&& from) {
  const std::size_t rb = t.row_bytes();
  std::vector<std::byte> out(rb * std::size_t(count));
  for (std::int64_t i = 0; i < count; ++i) std::memcpy(out.data() + std::size_t(i) * rb, t.row(from(i)), rb);
  return own_bytes(std::move(shape), t.type, std::move(out));
}

/// Rows r0 .. r0 + count - 1 of t, sharing its bytes.
inline stored_tensor row_slice(const stored_tensor& t, shape_t shape, std::int64_t r0, std::int64_t count) {
  return {std::move(shape), t.type,
          t.bytes.subspan(std::size_t(r0) * t.row_bytes(), std::size_t(count) * t.row_bytes()), t.owner};
}

/// [rows, cols] -> [cols, rows]: elementwise types move their elements; blocks are widened first.
inline stored_tensor transposed(const stored_tensor& t) {
  if (t.shape.size() != 2) return t;
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  if (gguf::block_size(t.type) != 1) {
    auto f = t.to_f32();
    return transposed(own_f32(std::move(f)));
  }
  const auto es = std::size_t(gguf::type_size(t.type));
  std::vector<std::byte> out(t.bytes.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      std::memcpy(out.data() + std::size_t(c * rows + r) * es, t.bytes.data() + std::size_t(r * cols + c) * es, es);
  return own_bytes({cols, rows}, t.type, std::move(out));
}

/// llama.cpp's LlamaModel.permute undone (transformers' reverse_permute): per head, rows stored as
/// [pair0.a, pair0.b, pair1.a, ...] go back to [all a; all b].
inline stored_tensor rope_pairs_to_halves(const stored_tensor& t, std::int64_t head_dim) {
  std::vector<std::int64_t> from(std::size_t(t.rows()));
  const std::int64_t half = head_dim / 2;
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    const std::int64_t head = r / head_dim, i = r % head_dim;  // stored row: pair i / 2, member i % 2
    from[std::size_t(head * head_dim + (i % 2) * half + i / 2)] = r;
  }
  return gather_rows(t, t.shape, t.rows(), [&](std::int64_t i) { return from[std::size_t(i)]; });
}

}  // namespace detail

/// A checkpoint tensor as it is stored; `owner` keeps its bytes alive (null: the caller does).
inline stored_tensor stored_view(const tensor_view& t, std::shared_ptr<const void> owner = nullptr) {
  return {t.shape, detail::stored_type(t), t.data, std::move(owner)};
}

/// fp32 tensors as stored ones that view them (the map must outlive the result).
inline stored_weights view_f32(const weight_map& w) {
  stored_weights out;
  for (const auto& [name, t] : w)
    out[name] = {t.shape,
                 gguf::tensor_type::f32,
                 {reinterpret_cast<const std::byte*>(t.data.data()), t.data.size() * sizeof(float)},
                 nullptr};
  return out;
}

/// Unpacks every bound tensor into its canonical tensors in their stored format. `owner` keeps the
/// checkpoint's bytes alive for the tensors that view them (null: the caller keeps them alive while
/// it uses the result).
inline stored_weights unpack_stored(const registry::binding& b, const descriptor& n,
                                    std::shared_ptr<const void> owner = nullptr) {
  if (!b.complete()) throw checkpoint_error("checkpoint", "does not match its config: " + b.report());
  const auto canonical = canonical_tensors(n);
  stored_weights out;
  for (const auto& bound : b.tensors) {
    const auto& expected = bound.expected;  // not a structured binding: clang 14 cannot capture those
    stored_tensor t = stored_view(bound.tensor, owner);
    auto rows_of = [&](const std::string& name) { return canonical.at(name)[0]; };
    const auto split_rows = [&](const stored_tensor& s) {  // the targets stacked along the rows, in order
      std::int64_t at = 0;
      for (const auto& target : expected.targets) {
        out[target] = detail::row_slice(s, canonical.at(target), at, rows_of(target));
        at += rows_of(target);
      }
    };
    switch (expected.layout) {
      case tensor_layout::same: out[expected.targets[0]] = std::move(t); break;
      case tensor_layout::rope_pairs_rows:
        out[expected.targets[0]] = detail::rope_pairs_to_halves(t, n.dims.head_dim);
        break;
      case tensor_layout::plus_one: {
        auto f = t.to_f32();
        for (auto& x : f.data) x -= 1.0f;  // fp32, as transformers' `weights - 1`
        out[expected.targets[0]] = own_f32(std::move(f));
        break;
      }
      case tensor_layout::transposed:
        t = detail::transposed(t);
        t.shape = canonical.at(expected.targets[0]);
        out[expected.targets[0]] = std::move(t);
        break;
      case tensor_layout::fused_cols_transposed:
        t = detail::transposed(t);  // now [Σout, in]
        [[fallthrough]];
      case tensor_layout::fused_rows: split_rows(t); break;
      case tensor_layout::fused_rows_per_kv_group: {
        // rows are [kv head][its group's query heads | k | v][head_dim]
        const std::int64_t hd = n.dims.head_dim, kv = n.dims.num_kv_heads, group = n.dims.num_heads / kv;
        const std::int64_t sizes[3] = {group * hd, hd, hd}, offsets[3] = {0, group * hd, (group + 1) * hd};
        for (std::size_t part = 0; part < 3; ++part)
          out[expected.targets[part]] = detail::gather_rows(
              t, canonical.at(expected.targets[part]), kv * sizes[part],
              [&](std::int64_t i) { return i / sizes[part] * (group + 2) * hd + offsets[part] + i % sizes[part]; });
        break;
      }
      case tensor_layout::experts_rows:  // [experts, Σout, in]: expert after expert, each one's targets in order
        t.shape = {t.shape[0] * t.shape[1], t.shape.size() == 3 ? t.shape[2] : 1};
        split_rows(t);
        break;
      case tensor_layout::fused_rows_per_head: {
        // rows are [head][q|k|v][head_dim]: gather each target's rows head by head
        const auto parts = std::int64_t(expected.targets.size());
        const std::int64_t hd = n.dims.head_dim, heads = t.rows() / (parts * hd);
        for (std::int64_t part = 0; part < parts; ++part)
          out[expected.targets[std::size_t(part)]] =
              detail::gather_rows(t, canonical.at(expected.targets[std::size_t(part)]), heads * hd,
                                  [&](std::int64_t i) { return (i / hd * parts + part) * hd + i % hd; });
        break;
      }
    }
  }
  return out;
}

/// Unpacks every bound tensor into its canonical tensors in fp32 (the same rules, then widened).
inline weight_map unpack_weights(const registry::binding& b, const descriptor& n) {
  weight_map out;
  for (auto& [name, t] : unpack_stored(b, n)) out[name] = t.to_f32();
  return out;
}

}  // namespace nexus
