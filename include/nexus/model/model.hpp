// The model interface every backend implements: forward over a KV cache, returning logits and,
// on request, every layer's hidden state. Backends: nexus/backend/cpu (fp32 reference) and
// nexus/backend/cuda.
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "nexus/arch/descriptor.hpp"
#include "nexus/model/kv_cache.hpp"
#include "nexus/model/weights.hpp"

namespace nexus {

struct forward_options {
  bool all_logits = true;       // false: logits of the last position only
  bool hidden_states = false;   // also return embed, every layer's output, and the final norm
  std::int64_t chunk_rows = 0;  // tokens per backend step; 0: the backend's limit (none on the CPU)
};

struct forward_result {
  tensor_f32 logits;               // [positions, vocab]
  std::vector<tensor_f32> hidden;  // [embed, layer 0..L-1, final], each [positions, hidden]
};

/// Appends the rows of `part` to `whole` (an empty `whole` takes `part` as it is).
inline void append_rows(tensor_f32& whole, tensor_f32&& part) {
  if (whole.shape.empty()) {
    whole = std::move(part);
    return;
  }
  if (whole.shape.size() != 2 || part.shape.size() != 2 || whole.shape[1] != part.shape[1])
    throw usage_error("forward", "chunk results of different widths");
  whole.data.insert(whole.data.end(), part.data.begin(), part.data.end());
  whole.shape[0] += part.shape[0];
}

/// A model ready to run; created by load_cpu_model / make_cpu_model or a backend's loader.
class model {
 public:
  virtual ~model() = default;
  const descriptor& arch() const noexcept { return n_; }
  /// A cache for up to `capacity` positions, in the memory this model runs in.
  virtual kv_cache new_cache(std::int64_t capacity) const { return kv_cache(n_, capacity); }
  /// Runs `ids` at the positions following what `cache` holds, appending their keys and values.
  /// Checks the input once for every backend, then runs it in steps of at most chunk_rows tokens
  /// and joins their logits and hidden states, so a chunked forward returns what one step would.
  forward_result forward(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt = {}) const {
    const auto& d = n_.dims;
    if (ids.empty()) throw usage_error("forward", "no tokens given");
    for (const auto id : ids)
      if (id < 0 || id >= d.vocab_size)
        throw usage_error(
            "forward", "token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(d.vocab_size));
    cache.check_room(std::int64_t(ids.size()));
    if (n_.position.kind == position_kind::learned && cache.size() + std::int64_t(ids.size()) > d.max_positions)
      throw usage_error("forward", "position " + std::to_string(cache.size() + std::int64_t(ids.size()) - 1) +
                                       " beyond max_positions " + std::to_string(d.max_positions));
    const std::int64_t limit = max_chunk_rows();
    std::int64_t chunk = opt.chunk_rows > 0 ? opt.chunk_rows : limit;
    if (limit > 0 && chunk > limit) chunk = limit;
    if (chunk <= 0 || std::int64_t(ids.size()) <= chunk) return run(ids, cache, opt);
    forward_result out;
    for (std::size_t at = 0; at < ids.size(); at += std::size_t(chunk)) {
      const auto part = ids.subspan(at, std::min(std::size_t(chunk), ids.size() - at));
      auto r = run(part, cache, opt);
      if (opt.all_logits || at + part.size() == ids.size()) append_rows(out.logits, std::move(r.logits));
      out.hidden.resize(r.hidden.size());
      for (std::size_t i = 0; i < r.hidden.size(); ++i) append_rows(out.hidden[i], std::move(r.hidden[i]));
    }
    return out;
  }

 protected:
  explicit model(descriptor n) : n_(std::move(n)) {}
  /// One step over ids (at most max_chunk_rows of them), already checked by forward().
  virtual forward_result run(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const = 0;
  /// The most tokens one run() takes; 0: any number.
  virtual std::int64_t max_chunk_rows() const { return 0; }
  descriptor n_;
};

}  // namespace nexus
