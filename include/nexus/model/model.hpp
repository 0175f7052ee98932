// The model interface every backend implements: forward over a KV cache, returning logits and,
// on request, every layer's hidden state. Backends: nexus/backend/cpu (fp32 reference) and
// nexus/backend/cuda.
#pragma once

#include <span>
#include <vector>

#include "nexus/arch/descriptor.hpp"
#include "nexus/model/kv_cache.hpp"
#include "nexus/model/weights.hpp"

namespace nexus {

struct forward_options {
  bool all_logits = true;       // false: logits of the last position only
  bool hidden_states = false;   // also return embed, every layer's output, and the final norm
};

struct forward_result {
  tensor_f32 logits;                // [positions, vocab]
  std::vector<tensor_f32> hidden;   // [embed, layer 0..L-1, final], each [positions, hidden]
};

/// A model ready to run; created by load_cpu_model / make_cpu_model.
class model {
 public:
  virtual ~model() = default;
  const descriptor& arch() const noexcept { return n_; }
  /// A cache for up to `capacity` positions, in the memory this model runs in.
  virtual kv_cache new_cache(std::int64_t capacity) const { return kv_cache(n_, capacity); }
  /// Runs `ids` at the positions following what `cache` holds, appending their keys and values.
  forward_result forward(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt = {}) const {
    return run(ids, cache, opt);
  }

 protected:
  explicit model(descriptor n) : n_(std::move(n)) {}
  virtual forward_result run(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const = 0;
  descriptor n_;
};

}  // namespace nexus
