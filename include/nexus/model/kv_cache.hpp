// Key/value cache for incremental decoding: one contiguous buffer per layer, sized once up front
// so decoding never reallocates. Keys are stored after RoPE, as transformers stores them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "nexus/arch/descriptor.hpp"
#include "nexus/core/error.hpp"

namespace nexus {

class kv_cache {
 public:
  /// `device_state`: a backend's own storage (the CUDA model's device cache and arena); the host
  /// buffers are then not allocated.
  kv_cache(const descriptor& n, std::int64_t capacity, std::shared_ptr<void> device_state = nullptr)
      : capacity_(capacity),
        width_(n.dims.num_kv_heads * n.dims.head_dim),
        k_(std::size_t(n.dims.num_layers)),
        v_(std::size_t(n.dims.num_layers)),
        device_(std::move(device_state)) {
    if (capacity <= 0) throw usage_error("kv_cache", "capacity must be positive");
    if (!device_) {
      for (auto& layer : k_) layer.resize(std::size_t(capacity * width_));
      for (auto& layer : v_) layer.resize(std::size_t(capacity * width_));
    }
    scratch_.resize(scratch_slots);  // fixed: growing the outer list never moves a slot
  }

  static constexpr std::size_t scratch_slots = 16;

  std::int64_t size() const noexcept { return size_; }  // tokens already cached
  std::int64_t capacity() const noexcept { return capacity_; }
  std::int64_t width() const noexcept { return width_; }  // kv_heads · head_dim
  void clear() noexcept { size_ = 0; }

  void* device_state() const noexcept { return device_.get(); }

  float* keys(std::size_t layer) { return k_[layer].data(); }
  float* values(std::size_t layer) { return v_[layer].data(); }
  const float* keys(std::size_t layer) const { return k_[layer].data(); }
  const float* values(std::size_t layer) const { return v_[layer].data(); }

  /// Reserves room for `tokens` more; the model calls this before writing them.
  void check_room(std::int64_t tokens) const {
    if (size_ + tokens > capacity_)
      throw usage_error("kv_cache", "needs " + std::to_string(size_ + tokens) + " positions, capacity is " +
                                        std::to_string(capacity_));
  }
  void advance(std::int64_t tokens) noexcept { size_ += tokens; }
  /// Keeps the first `tokens` positions and forgets the rest (the next forward overwrites them), so
  /// that branches sharing a prefix reuse its keys and values.
  void truncate(std::int64_t tokens) {
    if (tokens < 0 || tokens > size_)
      throw usage_error("kv_cache",
                        "cannot truncate " + std::to_string(size_) + " positions to " + std::to_string(tokens));
    size_ = tokens;
  }

  /// Keeps the positions `slots` (increasing), moved to the front in that order, and forgets the rest:
  /// what a token tree (forward_options::tree) no longer attends to is dropped and its room reused.
  void keep_slots(std::span<const std::int64_t> slots) {
    if (device_) throw unsupported_error("kv_cache", "keep_slots on a device cache");
    std::int64_t prev = -1;
    for (const auto s : slots) {
      if (s <= prev || s >= size_)
        throw usage_error("kv_cache", "keep_slots: slot " + std::to_string(s) + " not increasing or not below " +
                                          std::to_string(size_));
      prev = s;
    }
    for (auto* buffers : {&k_, &v_})
      for (auto& layer : *buffers)
        for (std::size_t i = 0; i < slots.size(); ++i)
          if (slots[i] != std::int64_t(i))
            std::copy_n(layer.begin() + slots[i] * width_, width_, layer.begin() + std::int64_t(i) * width_);
    size_ = std::int64_t(slots.size());
  }

  /// Room for `capacity` positions, keeping what is cached (host caches only).
  void grow(std::int64_t capacity) {
    if (device_) throw unsupported_error("kv_cache", "grow on a device cache");
    if (capacity <= capacity_) return;
    for (auto* buffers : {&k_, &v_})
      for (auto& layer : *buffers) layer.resize(std::size_t(capacity * width_));
    capacity_ = capacity;
  }

  /// Scratch buffer `slot` of at least `size` floats, kept between calls so that decoding one
  /// token after another allocates nothing.
  float* scratch(std::size_t slot, std::size_t size) {
    if (slot >= scratch_slots) throw usage_error("kv_cache", "scratch slot " + std::to_string(slot) + " out of range");
    if (scratch_[slot].size() < size) scratch_[slot].resize(size);
    return scratch_[slot].data();
  }

 private:
  std::int64_t capacity_, width_, size_ = 0;
  std::vector<std::vector<float>> k_, v_;
  std::vector<std::vector<float>> scratch_;
  std::shared_ptr<void> device_;
};

}  // namespace nexus
