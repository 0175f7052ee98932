// What every bridge kind (kinds/*.hpp) builds on. The kinds are policy structs of one template
// (bridge.hpp), FlashInfer style: each kind fixes at compile time what changes the shape of the
// computation (rows in → rows out, whether it reads context rows) and supplies its parameters, forward
// and backward on the building blocks of ops.hpp (and the same on a device); every width, the depth
// and the heads are runtime values (bridge_dims).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/fusion/bridges/ops.hpp"

namespace nexus::fusion {

/// A bridge's runtime dimensions (saved in its file's metadata as "traits"). Which fields a kind reads
/// is said at each kind; the others stay 0.
struct bridge_dims {
  std::int64_t d_in = 0;       // width of an input row
  std::int64_t d_out = 0;      // width of an output row
  std::int64_t hidden = 0;     // MLP: hidden width; attention kinds: inner width (heads · head width)
  std::int64_t heads = 0;      // attention kinds: number of heads
  std::int64_t queries = 0;    // attention pooling: learned queries; Perceiver: latents (output rows)
  std::int64_t depth = 0;      // Perceiver: layers (cross-attention then self-attention each)
  std::int64_t d_context = 0;  // gated adapter: width of a context row
  std::int64_t rank = 0;       // LoRA: rank
  double alpha = 0;            // LoRA: the update is scaled by alpha / rank
  bool skip = false;           // a linear skip path y += skip(x) beside the body (per-row kinds; see bridge.hpp)
  bool operator==(const bridge_dims&) const = default;
};

/// LayerNorm's eps in every bridge (PyTorch's default).
inline constexpr double bridge_norm_eps = 1e-5;

/// One named parameter: values, the gradient the backward passes add to, and whether an optimizer may
/// change it (LoRA's base weights are frozen).
template <class S>
struct parameter {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<S> value, grad;
  bool frozen = false;
  std::int64_t numel() const { return std::int64_t(value.size()); }
};

/// A bridge's parameters in declaration order (the order they are saved in); found by name.
template <class S>
class parameter_list {
 public:
  /// allocate false: shapes only (to count what dims imply before allocating it).
  explicit parameter_list(bool allocate = true) : allocate_(allocate) {}
  parameter<S>& add(std::string name, std::vector<std::int64_t> shape, bool frozen = false) {
    std::int64_t n = 1;
    for (const auto d : shape) n *= d;
    if (!allocate_) n = 0;
    items_.push_back(
        {std::move(name), std::move(shape), std::vector<S>(std::size_t(n)), std::vector<S>(std::size_t(n)), frozen});
    return items_.back();
  }
  parameter<S>& at(std::string_view name) {
    for (auto& p : items_)
      if (p.name == name) return p;
    throw usage_error("bridge", "no parameter named '" + std::string(name) + "'");
  }
  const parameter<S>& at(std::string_view name) const { return const_cast<parameter_list&>(*this).at(name); }
  const S* v(std::string_view name) const { return at(name).value.data(); }
  S* g(std::string_view name) { return at(name).grad.data(); }
  bool contains(std::string_view name) const {
    for (const auto& p : items_)
      if (p.name == name) return true;
    return false;
  }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::size_t size() const { return items_.size(); }

 private:
  bool allocate_ = true;
  std::vector<parameter<S>> items_;
};

/// Deterministic initialisation (splitmix64): the same seed gives the same parameters everywhere.
class bridge_rng {
 public:
  explicit bridge_rng(std::uint64_t seed) : s_(seed) {}
  /// Uniform in [-a, a).
  double uniform(double a) {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double(z >> 11) * 0x1p-53 * 2 - 1) * a;
  }
  template <class S>
  void fill(parameter<S>& p, double a) {
    for (auto& v : p.value) v = S(uniform(a));
  }

 private:
  std::uint64_t s_;
};

namespace bridge_detail {

inline void need(bool ok, const char* field, const std::string& what) {
  if (!ok) throw usage_error(std::string("bridge_dims.") + field, what);
}
inline void need_attention(const bridge_dims& d) {
  need(d.hidden > 0, "hidden", "must be positive (the attention's inner width)");
  need(d.heads > 0 && d.hidden % d.heads == 0, "heads",
       "must be positive and divide hidden (" + std::to_string(d.hidden) + ")");
}
/// A linear layer's weight [out, in] and bias [out], PyTorch's initialisation U(±1/√in).
template <class S>
void add_linear(parameter_list<S>& ps, bridge_rng& rng, const std::string& name, std::int64_t out, std::int64_t in,
                bool bias = true, bool frozen = false) {
  rng.fill(ps.add(name + ".weight", {out, in}, frozen), 1 / std::sqrt(double(in)));
  if (bias) rng.fill(ps.add(name + ".bias", {out}, frozen), 1 / std::sqrt(double(in)));
}
template <class S>
void add_norm(parameter_list<S>& ps, const std::string& name, std::int64_t width) {
  for (auto& v : ps.add(name + ".weight", {width}).value) v = S(1);
  ps.add(name + ".bias", {width});
}
template <class S>
void add_attention(parameter_list<S>& ps, bridge_rng& rng, const std::string& name, std::int64_t w, std::int64_t dq,
                   std::int64_t dk, std::int64_t out, bool out_bias) {
  if (dq > 0) add_linear(ps, rng, name + ".q", w, dq, false);
  add_linear(ps, rng, name + ".k", w, dk, false);
  add_linear(ps, rng, name + ".v", w, dk, false);
  add_linear(ps, rng, name + ".o", out, w, out_bias);
}
template <class S>
bridge_ops::mha_weights<S> attention_of(const parameter_list<S>& ps, const std::string& name, bool has_q,
                                        bool out_bias) {
  return {has_q ? ps.v(name + ".q.weight") : nullptr, ps.v(name + ".k.weight"), ps.v(name + ".v.weight"),
          ps.v(name + ".o.weight"), out_bias ? ps.v(name + ".o.bias") : nullptr};
}
template <class S>
bridge_ops::mha_grads<S> attention_grads(parameter_list<S>& ps, const std::string& name, bool has_q, bool out_bias) {
  return {has_q ? ps.g(name + ".q.weight") : nullptr, ps.g(name + ".k.weight"), ps.g(name + ".v.weight"),
          ps.g(name + ".o.weight"), out_bias ? ps.g(name + ".o.bias") : nullptr};
}
template <class S>
void zero(parameter<S>& p) {
  std::fill(p.value.begin(), p.value.end(), S(0));
}

}  // namespace bridge_detail

// Each kind: name; per_row (output row r depends on input row r only; else the output has
// dims.queries rows); uses_context (reads context rows); check(dims); declare (parameters, initialised);
// tape<S> (what forward keeps); forward; backward (dx and dc are added to; parameter gradients too);
// zero_last (zeroes the body's last layer, so that with a skip path the bridge starts at the skip map).
// device_forward / device_backward (the same composed from a device's building blocks; a kind
// without them does not compile into cuda_bridge).

}  // namespace nexus::fusion
