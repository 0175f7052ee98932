// The device memory of one KV cache: keys and values of every layer, and one activation arena
// laid out once for the largest step (max_rows tokens), so nothing is allocated per token.
#pragma once

#include <algorithm>
#include <cstdint>

#include "nexus/arch/descriptor.hpp"
#include "nexus/backend/cuda/launch.hpp"
#include "nexus/backend/cuda/status.hpp"

namespace nexus::cuda {

class arena {
 public:
  // fp32 activations
  float *x = nullptr, *qkv = nullptr, *q = nullptr, *t1 = nullptr, *t2 = nullptr, *gu = nullptr, *logits = nullptr;
  float *work = nullptr, *inv_freq = nullptr, *inv_freq_sliding = nullptr;  // sliding: Gemma 3's own rope base
  // storage-precision activations (GEMM inputs)
  void *a = nullptr, *m = nullptr, *attn = nullptr, *h = nullptr;
  // step inputs read by the kernels from device memory (a captured graph replays with new values)
  int *ids = nullptr, *first = nullptr;
  int splits = 1;  // key splits of a decode step (flash-decoding)

  arena(const descriptor& n, std::int64_t capacity, int max_rows, precision p) : capacity_(capacity) {
    const auto& d = n.dims;
    const std::size_t L = std::size_t(d.num_layers), es = bytes_of(p), R = std::size_t(max_rows);
    kw_ = std::size_t(d.num_kv_heads * d.head_dim) * es;
    const std::size_t qw = std::size_t(d.num_heads * d.head_dim), kw = std::size_t(d.num_kv_heads * d.head_dim);
    const std::size_t H = std::size_t(d.hidden_size), I = std::size_t(d.intermediate_size),
                      V = std::size_t(d.vocab_size);
    k_ = device_buffer(L * std::size_t(capacity) * kw_);
    v_ = device_buffer(L * std::size_t(capacity) * kw_);
    splits = int(std::clamp<std::int64_t>((capacity + 127) / 128, 1, 32));
    std::size_t bytes = 0;
    auto take = [&](std::size_t n_bytes) {
      const std::size_t at = bytes;
      bytes += (n_bytes + 255) / 256 * 256;
      return at;
    };
    const auto o_x = take(R * H * 4), o_qkv = take(R * (qw + 2 * kw) * 4), o_q = take(R * qw * 4),
               o_t1 = take(R * H * 4), o_t2 = take(R * H * 4), o_gu = take(R * 2 * I * 4), o_logits = take(R * V * 4),
               o_work = take(std::size_t(d.num_heads) * std::size_t(splits) * (std::size_t(d.head_dim) + 2) * 4),
               o_inv = take(std::size_t(std::max<std::int64_t>(n.position.rotary_dim, 2)) * 4),
               o_inv_sliding = take(std::size_t(std::max<std::int64_t>(n.position.rotary_dim, 2)) * 4),
               o_a = take(R * H * es), o_m = take(R * H * es), o_attn = take(R * qw * es), o_h = take(R * I * es),
               o_ids = take(R * 4), o_first = take(4);
    memory_ = device_buffer(bytes);
    auto f32 = [&](std::size_t off) { return reinterpret_cast<float*>(memory_.as<char>() + off); };
    auto raw = [&](std::size_t off) { return static_cast<void*>(memory_.as<char>() + off); };
    x = f32(o_x), qkv = f32(o_qkv), q = f32(o_q), t1 = f32(o_t1), t2 = f32(o_t2), gu = f32(o_gu),
    logits = f32(o_logits);
    work = f32(o_work), inv_freq = f32(o_inv), inv_freq_sliding = f32(o_inv_sliding);
    a = raw(o_a), m = raw(o_m), attn = raw(o_attn), h = raw(o_h);
    ids = reinterpret_cast<int*>(raw(o_ids)), first = reinterpret_cast<int*>(raw(o_first));
  }

  std::int64_t capacity() const noexcept { return capacity_; }
  /// Layer l's key and value cache, [capacity, kv_heads · head_dim] in storage precision.
  void* keys(std::size_t l) const noexcept { return k_.as<char>() + l * std::size_t(capacity_) * kw_; }
  void* values(std::size_t l) const noexcept { return v_.as<char>() + l * std::size_t(capacity_) * kw_; }

 private:
  std::int64_t capacity_;
  std::size_t kw_ = 0;  // bytes of one position's keys
  device_buffer k_, v_, memory_;
};

}  // namespace nexus::cuda
