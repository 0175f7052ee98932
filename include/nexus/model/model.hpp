// The model interface every backend implements: forward over a KV cache, returning logits and,
// on request, every layer's hidden state. Backends: nexus/backend/cpu (fp32 reference) and
// nexus/backend/cuda.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "nexus/arch/descriptor.hpp"
#include "nexus/model/kv_cache.hpp"
#include "nexus/model/weights.hpp"

namespace nexus {

/// What to copy out of a forward pass besides the logits: a selection of the hidden-state
/// snapshots and the next-token log-probabilities. Only what is asked for is copied or computed.
struct tap_request {
  std::vector<std::int64_t> layers;  // residual stream after these layers, in this order; -1: the last layer
  bool final_norm = false;           // the output of the final norm (what the head reads)
  std::int64_t top_k = 0;            // the k most likely next tokens' log-probabilities at every position
  bool distribution = false;         // the full next-token log-probability distribution at every position
  bool empty() const { return layers.empty() && !final_norm && top_k == 0 && !distribution; }
  bool wants_logprobs() const { return top_k > 0 || distribution; }
};

/// The taps of a forward pass, each joined over its steps; rows are positions.
struct tap_result {
  std::vector<tensor_f32> layers;     // one per requested layer, in request order: [positions, hidden]
  tensor_f32 final_norm;              // [positions, hidden] when requested
  tensor_f32 top_logprobs;            // [positions, k], most likely first (ties: lower id first)
  std::vector<std::int32_t> top_ids;  // [positions * k], the ids of top_logprobs
  tensor_f32 logprobs;                // [positions, vocab] when the distribution is requested
};

/// A function called on the residual stream after one layer, before anything reads it: it may rewrite
/// the rows in place (a bridge stitched in at that layer, an adapter between two blocks). `rows` is
/// [n, hidden] fp32, row-major, the positions of this step (a chunked forward calls it once per step;
/// the step's first position is the cache's size() during the call). Hidden-state snapshots and taps of
/// that layer see the rewritten rows. Runs on the host: the CUDA backend copies the rows out and back.
struct residual_hook {
  std::int64_t layer = 0;  // after this layer; negative: from the end (-1: the last, before the final norm)
  std::function<void(std::int64_t layer, float* rows, std::int64_t n, std::int64_t hidden)> fn;
  explicit operator bool() const { return bool(fn); }
};

/// The new tokens of a forward as the nodes of a tree instead of one sequence: several continuations of
/// what the cache holds, run in one pass (a byte-level teacher's candidate tokenizations). New token r is
/// written at cache slot size() + r, as in a plain forward, but it sits at position context[r].size() and
/// attends to the slots context[r] (its predecessors in position order: cached slots or earlier new
/// tokens) and to itself. The caller keeps track of which slot holds what (kv_cache::keep_slots).
using token_tree = std::span<const std::span<const std::int64_t>>;

struct forward_options {
  bool all_logits = true;       // false: logits of the last position only
  bool hidden_states = false;   // also return embed, every layer's output, and the final norm
  std::int64_t chunk_rows = 0;  // tokens per backend step; 0: the backend's limit (none on the CPU)
  tap_request taps = {};        // selected snapshots and log-probabilities (forward_result::taps)
  residual_hook hook = {};      // called after hook.layer on the residual stream (no fn: none)
  token_tree tree = {};         // empty: the tokens continue the cached sequence; else one context per token
};

struct forward_result {
  tensor_f32 logits;               // [positions, vocab]
  std::vector<tensor_f32> hidden;  // [embed, layer 0..L-1, final], each [positions, hidden]
  tap_result taps;
};

/// The layers a tap request names, as indices 0..num_layers-1 (negative ones count from the end).
inline std::vector<std::size_t> tapped_layers(const tap_request& r, std::int64_t num_layers) {
  std::vector<std::size_t> out;
  for (const auto l : r.layers) {
    const std::int64_t a = l < 0 ? num_layers + l : l;
    if (a < 0 || a >= num_layers)
      throw usage_error("taps", "layer " + std::to_string(l) + " outside a model of " + std::to_string(num_layers) +
                                    " layers (valid: " + std::to_string(-num_layers) + " .. " +
                                    std::to_string(num_layers - 1) + ")");
    out.push_back(std::size_t(a));
  }
  return out;
}

/// The layer a hook runs after, as an index 0..num_layers-1; -1 when there is no hook.
inline std::int64_t hooked_layer(const residual_hook& h, std::int64_t num_layers) {
  if (!h) return -1;
  const std::int64_t a = h.layer < 0 ? num_layers + h.layer : h.layer;
  if (a < 0 || a >= num_layers)
    throw usage_error("hook", "layer " + std::to_string(h.layer) + " outside a model of " + std::to_string(num_layers) +
                                  " layers (valid: " + std::to_string(-num_layers) + " .. " +
                                  std::to_string(num_layers - 1) + ")");
  return a;
}

/// Log-softmax of each row of `logits` ([rows, vocab]) into the tap result: the top k and/or all of it.
inline void tap_logprobs(const tensor_f32& logits, const tap_request& r, tap_result& out) {
  if (!r.wants_logprobs()) return;
  const auto rows = logits.shape.at(0), vocab = logits.shape.at(1);
  const auto k = std::min(r.top_k, vocab);
  std::vector<float> lp(std::size_t(rows * vocab));
  for (std::int64_t p = 0; p < rows; ++p) {
    const float* row = logits.data.data() + p * vocab;
    float* dst = lp.data() + p * vocab;
    const float top = *std::max_element(row, row + vocab);
    double sum = 0;
    for (std::int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i]) - double(top));
    const double log_z = double(top) + std::log(sum);
    for (std::int64_t i = 0; i < vocab; ++i) dst[i] = float(double(row[i]) - log_z);
  }
  if (k > 0) {
    out.top_logprobs = {{rows, k}, std::vector<float>(std::size_t(rows * k))};
    out.top_ids.resize(std::size_t(rows * k));
    std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
    for (std::int64_t p = 0; p < rows; ++p) {
      const float* row = lp.data() + p * vocab;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](auto a, auto b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      for (std::int64_t i = 0; i < k; ++i) {
        out.top_ids[std::size_t(p * k + i)] = order[std::size_t(i)];
        out.top_logprobs.data[std::size_t(p * k + i)] = row[order[std::size_t(i)]];
      }
    }
  }
  if (r.distribution) out.logprobs = {{rows, vocab}, std::move(lp)};
}

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
    hooked_layer(opt.hook, d.num_layers);  // a hook's layer is checked before anything runs
    const std::int64_t last =
        opt.tree.empty() ? cache.size() + std::int64_t(ids.size()) - 1 : check_tree(ids, cache, opt);
    if (n_.position.kind == position_kind::learned && last >= d.max_positions)
      throw usage_error(
          "forward", "position " + std::to_string(last) + " beyond max_positions " + std::to_string(d.max_positions));
    const std::int64_t limit = max_chunk_rows();
    std::int64_t chunk = opt.chunk_rows > 0 ? opt.chunk_rows : limit;
    if (limit > 0 && chunk > limit) chunk = limit;
    if (chunk <= 0 || std::int64_t(ids.size()) <= chunk) return step(ids, cache, opt);
    forward_result out;
    forward_options o = opt;  // a tree's contexts name slots, not offsets: each step takes its own rows
    for (std::size_t at = 0; at < ids.size(); at += std::size_t(chunk)) {
      const auto part = ids.subspan(at, std::min(std::size_t(chunk), ids.size() - at));
      if (!opt.tree.empty()) o.tree = opt.tree.subspan(at, part.size());
      auto r = step(part, cache, o);
      if (opt.all_logits || at + part.size() == ids.size()) append_rows(out.logits, std::move(r.logits));
      out.hidden.resize(r.hidden.size());
      for (std::size_t i = 0; i < r.hidden.size(); ++i) append_rows(out.hidden[i], std::move(r.hidden[i]));
      auto& t = out.taps;
      t.layers.resize(r.taps.layers.size());
      for (std::size_t i = 0; i < r.taps.layers.size(); ++i) append_rows(t.layers[i], std::move(r.taps.layers[i]));
      if (!r.taps.final_norm.shape.empty()) append_rows(t.final_norm, std::move(r.taps.final_norm));
      if (!r.taps.top_logprobs.shape.empty()) append_rows(t.top_logprobs, std::move(r.taps.top_logprobs));
      t.top_ids.insert(t.top_ids.end(), r.taps.top_ids.begin(), r.taps.top_ids.end());
      if (!r.taps.logprobs.shape.empty()) append_rows(t.logprobs, std::move(r.taps.logprobs));
    }
    return out;
  }

 protected:
  explicit model(descriptor n) : n_(std::move(n)) {}
  /// One step over ids (at most max_chunk_rows of them), already checked by forward().
  virtual forward_result run(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const = 0;
  /// The most tokens one run() takes; 0: any number.
  virtual std::int64_t max_chunk_rows() const { return 0; }
  /// Whether run() fills taps.layers and taps.final_norm itself; other backends get them as a
  /// selection of the hidden-state snapshots (all of which they then copy out).
  virtual bool fills_hidden_taps() const { return false; }
  /// Whether run() takes forward_options::tree.
  virtual bool runs_token_trees() const { return false; }

 private:
  /// Checks a token tree against the ids and the cache; returns its deepest position.
  std::int64_t check_tree(std::span<const std::int32_t> ids, const kv_cache& cache, const forward_options& opt) const {
    if (!runs_token_trees())
      throw unsupported_error("forward",
                              "token trees (forward_options::tree) are not supported by this backend; "
                              "the CPU backend runs them");
    if (opt.tree.size() != ids.size())
      throw usage_error("forward", "token tree of " + std::to_string(opt.tree.size()) + " contexts for " +
                                       std::to_string(ids.size()) + " tokens");
    std::int64_t last = 0;
    for (std::size_t r = 0; r < ids.size(); ++r) {
      const std::int64_t slot = cache.size() + std::int64_t(r);
      for (const auto s : opt.tree[r])
        if (s < 0 || s >= slot)
          throw usage_error("forward", "token " + std::to_string(r) + " of the tree attends to slot " +
                                           std::to_string(s) + ", not before its own slot " + std::to_string(slot));
      last = std::max(last, std::int64_t(opt.tree[r].size()));
    }
    return last;
  }

  /// One run() with the taps: layers and final norm (from the snapshots where the backend does not
  /// fill them) and the log-probabilities, from all of this step's logits.
  forward_result step(std::span<const std::int32_t> ids, kv_cache& cache, const forward_options& opt) const {
    const auto& t = opt.taps;
    if (t.empty()) return run(ids, cache, opt);
    const auto layers = tapped_layers(t, n_.dims.num_layers);
    const bool select = !fills_hidden_taps() && (!layers.empty() || t.final_norm);
    forward_options o = opt;
    o.hidden_states = opt.hidden_states || select;
    o.all_logits = opt.all_logits || t.wants_logprobs();
    auto r = run(ids, cache, o);
    if (select) {
      r.taps.layers.clear();
      for (const auto l : layers) r.taps.layers.push_back(r.hidden.at(l + 1));
      if (t.final_norm) r.taps.final_norm = r.hidden.back();
      if (!opt.hidden_states) r.hidden.clear();
    }
    tap_logprobs(r.logits, t, r.taps);
    if (!opt.all_logits && r.logits.shape.at(0) > 1) {  // keep the last position's logits only
      const auto vocab = r.logits.shape[1];
      r.logits.data.erase(r.logits.data.begin(), r.logits.data.end() - vocab);
      r.logits.shape[0] = 1;
    }
    return r;
  }

 protected:
  descriptor n_;
};

}  // namespace nexus
