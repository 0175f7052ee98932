// The kinds of bridge, as policy structs of one template (nexus/fusion/bridges/bridge.hpp), FlashInfer style:
// each kind fixes at compile time what changes the shape of the computation (rows in → rows out,
// whether it reads context rows) and supplies its parameters, forward and backward on the building
// blocks of bridge_ops.hpp; every width, the depth and the heads are runtime values (bridge_dims).
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

/// y = W x + b. Reads d_in, d_out.
struct linear_kind {
  static constexpr std::string_view name = "linear";
  static constexpr bool per_row = true, uses_context = false;
  static void check(const bridge_dims&) {}
  template <class S>
  static void declare(const bridge_dims& d, parameter_list<S>& ps, bridge_rng& rng) {
    bridge_detail::add_linear(ps, rng, "linear", d.d_out, d.d_in);
  }
  template <class S>
  struct tape {};
  template <class S>
  static void forward(const bridge_dims& d, const parameter_list<S>& ps, const S* x, std::int64_t n, const S*,
                      std::int64_t, tape<S>&, S* y) {
    bridge_ops::linear(x, n, d.d_in, ps.v("linear.weight"), ps.v("linear.bias"), d.d_out, y);
  }
  template <class S>
  static void backward(const bridge_dims& d, parameter_list<S>& ps, const S* x, std::int64_t n, const S*, std::int64_t,
                       const tape<S>&, const S* dy, S* dx, S*) {
    bridge_ops::linear_backward(x, dy, n, d.d_in, ps.v("linear.weight"), d.d_out, dx, ps.g("linear.weight"),
                                ps.g("linear.bias"));
  }
  template <class S>
  static void zero_last(parameter_list<S>& ps) {
    bridge_detail::zero(ps.at("linear.weight")), bridge_detail::zero(ps.at("linear.bias"));
  }
};

/// LLaVA-1.5's projector with a norm: Linear → LayerNorm → GELU → Linear. Reads d_in, hidden, d_out.
struct mlp_kind {
  static constexpr std::string_view name = "mlp";
  static constexpr bool per_row = true, uses_context = false;
  static void check(const bridge_dims& d) { bridge_detail::need(d.hidden > 0, "hidden", "must be positive"); }
  template <class S>
  static void declare(const bridge_dims& d, parameter_list<S>& ps, bridge_rng& rng) {
    bridge_detail::add_linear(ps, rng, "fc1", d.hidden, d.d_in);
    bridge_detail::add_norm(ps, "norm", d.hidden);
    bridge_detail::add_linear(ps, rng, "fc2", d.d_out, d.hidden);
  }
  template <class S>
  struct tape {
    std::vector<S> h1, h2, h3;  // fc1 out, norm out, GELU out
  };
  template <class S>
  static void forward(const bridge_dims& d, const parameter_list<S>& ps, const S* x, std::int64_t n, const S*,
                      std::int64_t, tape<S>& t, S* y) {
    const auto H = d.hidden;
    t.h1.resize(std::size_t(n * H)), t.h2.resize(t.h1.size()), t.h3.resize(t.h1.size());
    bridge_ops::linear(x, n, d.d_in, ps.v("fc1.weight"), ps.v("fc1.bias"), H, t.h1.data());
    bridge_ops::layer_norm(t.h1.data(), n, H, ps.v("norm.weight"), ps.v("norm.bias"), S(bridge_norm_eps), t.h2.data());
    for (std::size_t i = 0; i < t.h2.size(); ++i) t.h3[i] = math::activate<activation::gelu>(t.h2[i]);
    bridge_ops::linear(t.h3.data(), n, H, ps.v("fc2.weight"), ps.v("fc2.bias"), d.d_out, y);
  }
  template <class S>
  static void backward(const bridge_dims& d, parameter_list<S>& ps, const S* x, std::int64_t n, const S*, std::int64_t,
                       const tape<S>& t, const S* dy, S* dx, S*) {
    const auto H = d.hidden;
    std::vector<S> dh(t.h1.size()), dh1(t.h1.size());
    bridge_ops::linear_backward(t.h3.data(), dy, n, H, ps.v("fc2.weight"), d.d_out, dh.data(), ps.g("fc2.weight"),
                                ps.g("fc2.bias"));
    for (std::size_t i = 0; i < dh.size(); ++i) dh[i] *= math::activate_grad<activation::gelu>(t.h2[i]);
    bridge_ops::layer_norm_backward(t.h1.data(), dh.data(), n, H, ps.v("norm.weight"), S(bridge_norm_eps), dh1.data(),
                                    ps.g("norm.weight"), ps.g("norm.bias"));
    bridge_ops::linear_backward(x, dh1.data(), n, d.d_in, ps.v("fc1.weight"), H, dx, ps.g("fc1.weight"),
                                ps.g("fc1.bias"));
  }
  template <class S>
  static void zero_last(parameter_list<S>& ps) {
    bridge_detail::zero(ps.at("fc2.weight")), bridge_detail::zero(ps.at("fc2.bias"));
  }
};

/// Attention pooling (BLIP-2's queries, without their transformer): k learned queries attend over the
/// input sequence, n rows → k rows. Reads d_in, d_out, hidden, heads, queries.
struct attention_pool_kind {
  static constexpr std::string_view name = "attention_pool";
  static constexpr bool per_row = false, uses_context = false;
  static void check(const bridge_dims& d) {
    bridge_detail::need_attention(d);
    bridge_detail::need(d.queries > 0, "queries", "must be positive (the output rows)");
  }
  template <class S>
  static void declare(const bridge_dims& d, parameter_list<S>& ps, bridge_rng& rng) {
    rng.fill(ps.add("queries", {d.queries, d.hidden}), 1.0);
    bridge_detail::add_attention(ps, rng, "attn", d.hidden, 0, d.d_in, d.d_out, true);
  }
  template <class S>
  struct tape {
    bridge_ops::mha_tape<S> attn;
  };
  template <class S>
  static void forward(const bridge_dims& d, const parameter_list<S>& ps, const S* x, std::int64_t n, const S*,
                      std::int64_t, tape<S>& t, S* y) {
    bridge_ops::mha(ps.v("queries"), d.queries, d.hidden, x, n, d.d_in,
                    bridge_detail::attention_of(ps, "attn", false, true), d.hidden, d.heads, d.d_out, t.attn, y);
  }
  template <class S>
  static void backward(const bridge_dims& d, parameter_list<S>& ps, const S* x, std::int64_t n, const S*, std::int64_t,
                       const tape<S>& t, const S* dy, S* dx, S*) {
    bridge_ops::mha_backward(ps.v("queries"), d.queries, d.hidden, x, n, d.d_in,
                             bridge_detail::attention_of(ps, "attn", false, true), d.hidden, d.heads, d.d_out, t.attn,
                             dy, ps.g("queries"), dx, bridge_detail::attention_grads(ps, "attn", false, true));
  }
  template <class S>
  static void zero_last(parameter_list<S>& ps) {
    bridge_detail::zero(ps.at("attn.o.weight")), bridge_detail::zero(ps.at("attn.o.bias"));
  }
};

/// Flamingo's Perceiver resampler: k latents, per layer cross-attending to the (normalised) input and
/// then attending to themselves, each a pre-norm residual step; then a norm and a linear map to d_out.
/// n rows → k rows. Reads d_in, d_out, hidden (latent width), heads, queries (latents), depth.
struct perceiver_kind {
  static constexpr std::string_view name = "perceiver";
  static constexpr bool per_row = false, uses_context = false;
  static void check(const bridge_dims& d) {
    bridge_detail::need_attention(d);
    bridge_detail::need(d.queries > 0, "queries", "must be positive (the latents, the output rows)");
    bridge_detail::need(d.depth > 0, "depth", "must be positive (the layers)");
  }
  static std::string layer(std::int64_t l) { return "layers." + std::to_string(l) + "."; }
  template <class S>
  static void declare(const bridge_dims& d, parameter_list<S>& ps, bridge_rng& rng) {
    const auto w = d.hidden;
    bridge_detail::add_norm(ps, "input_norm", d.d_in);
    rng.fill(ps.add("latents", {d.queries, w}), 1.0);
    for (std::int64_t l = 0; l < d.depth; ++l) {
      bridge_detail::add_norm(ps, layer(l) + "cross_norm", w);
      bridge_detail::add_attention(ps, rng, layer(l) + "cross", w, w, d.d_in, w, false);
      bridge_detail::add_norm(ps, layer(l) + "self_norm", w);
      bridge_detail::add_attention(ps, rng, layer(l) + "self", w, w, w, w, false);
    }
    bridge_detail::add_norm(ps, "out_norm", w);
    bridge_detail::add_linear(ps, rng, "out", d.d_out, w);
  }
  template <class S>
  struct tape {
    std::vector<S> xn, lo, last;               // normalised input, out norm's input and output
    std::vector<std::vector<S>> l0, a, l1, b;  // per layer: latents in, cross norm, after cross, self norm
    std::vector<bridge_ops::mha_tape<S>> cross, self_attention;  // per layer
  };
  template <class S>
  static void forward(const bridge_dims& d, const parameter_list<S>& ps, const S* x, std::int64_t n, const S*,
                      std::int64_t, tape<S>& t, S* y) {
    const auto w = d.hidden, k = d.queries;
    const S eps = S(bridge_norm_eps);
    const auto L = std::size_t(d.depth);
    t.xn.resize(std::size_t(n * d.d_in));
    bridge_ops::layer_norm(x, n, d.d_in, ps.v("input_norm.weight"), ps.v("input_norm.bias"), eps, t.xn.data());
    std::vector<S> lat(ps.v("latents"), ps.v("latents") + k * w), z(std::size_t(k * w));
    t.l0.resize(L), t.a.resize(L), t.l1.resize(L), t.b.resize(L), t.cross.resize(L), t.self_attention.resize(L);
    for (std::size_t l = 0; l < L; ++l) {
      const auto p = layer(std::int64_t(l));
      t.l0[l] = lat, t.a[l].resize(lat.size());
      bridge_ops::layer_norm(lat.data(), k, w, ps.v(p + "cross_norm.weight"), ps.v(p + "cross_norm.bias"), eps,
                             t.a[l].data());
      bridge_ops::mha(t.a[l].data(), k, w, t.xn.data(), n, d.d_in,
                      bridge_detail::attention_of(ps, p + "cross", true, false), w, d.heads, w, t.cross[l], z.data());
      for (std::size_t i = 0; i < lat.size(); ++i) lat[i] += z[i];
      t.l1[l] = lat, t.b[l].resize(lat.size());
      bridge_ops::layer_norm(lat.data(), k, w, ps.v(p + "self_norm.weight"), ps.v(p + "self_norm.bias"), eps,
                             t.b[l].data());
      bridge_ops::mha(t.b[l].data(), k, w, t.b[l].data(), k, w,
                      bridge_detail::attention_of(ps, p + "self", true, false), w, d.heads, w, t.self_attention[l],
                      z.data());
      for (std::size_t i = 0; i < lat.size(); ++i) lat[i] += z[i];
    }
    t.last = lat, t.lo.resize(lat.size());
    bridge_ops::layer_norm(lat.data(), k, w, ps.v("out_norm.weight"), ps.v("out_norm.bias"), eps, t.lo.data());
    bridge_ops::linear(t.lo.data(), k, w, ps.v("out.weight"), ps.v("out.bias"), d.d_out, y);
  }
  template <class S>
  static void backward(const bridge_dims& d, parameter_list<S>& ps, const S* x, std::int64_t n, const S*, std::int64_t,
                       const tape<S>& t, const S* dy, S* dx, S*) {
    const auto w = d.hidden, k = d.queries;
    const S eps = S(bridge_norm_eps);
    std::vector<S> dlo(std::size_t(k * w)), dlat(dlo.size()), dn(dlo.size()), dxn(std::size_t(n * d.d_in));
    bridge_ops::linear_backward(t.lo.data(), dy, k, w, ps.v("out.weight"), d.d_out, dlo.data(), ps.g("out.weight"),
                                ps.g("out.bias"));
    bridge_ops::layer_norm_backward(t.last.data(), dlo.data(), k, w, ps.v("out_norm.weight"), eps, dlat.data(),
                                    ps.g("out_norm.weight"), ps.g("out_norm.bias"));
    for (std::int64_t l = d.depth - 1; l >= 0; --l) {
      const auto p = layer(l);
      const auto i = std::size_t(l);
      std::fill(dn.begin(), dn.end(), S(0));  // self-attention: lat = l1 + attn(b, b), b = norm(l1)
      bridge_ops::mha_backward(t.b[i].data(), k, w, t.b[i].data(), k, w,
                               bridge_detail::attention_of(ps, p + "self", true, false), w, d.heads, w,
                               t.self_attention[i], dlat.data(), dn.data(), dn.data(),
                               bridge_detail::attention_grads(ps, p + "self", true, false));
      bridge_ops::layer_norm_backward(t.l1[i].data(), dn.data(), k, w, ps.v(p + "self_norm.weight"), eps, dlat.data(),
                                      ps.g(p + "self_norm.weight"), ps.g(p + "self_norm.bias"));
      std::fill(dn.begin(), dn.end(), S(0));  // cross-attention: l1 = l0 + attn(a, xn), a = norm(l0)
      bridge_ops::mha_backward(t.a[i].data(), k, w, t.xn.data(), n, d.d_in,
                               bridge_detail::attention_of(ps, p + "cross", true, false), w, d.heads, w, t.cross[i],
                               dlat.data(), dn.data(), dxn.data(),
                               bridge_detail::attention_grads(ps, p + "cross", true, false));
      bridge_ops::layer_norm_backward(t.l0[i].data(), dn.data(), k, w, ps.v(p + "cross_norm.weight"), eps, dlat.data(),
                                      ps.g(p + "cross_norm.weight"), ps.g(p + "cross_norm.bias"));
    }
    S* dlatents = ps.g("latents");
    for (std::size_t i = 0; i < dlat.size(); ++i) dlatents[i] += dlat[i];
    bridge_ops::layer_norm_backward(x, dxn.data(), n, d.d_in, ps.v("input_norm.weight"), eps, dx,
                                    ps.g("input_norm.weight"), ps.g("input_norm.bias"));
  }
  template <class S>
  static void zero_last(parameter_list<S>& ps) {
    bridge_detail::zero(ps.at("out.weight")), bridge_detail::zero(ps.at("out.bias"));
  }
};

/// Flamingo's gated cross-attention adapter, inserted between two blocks of a host model:
/// y = x + tanh(g) · attn(norm(x), context), with g = 0 at initialisation, so the host is unchanged
/// until training opens the gate. Each row attends to the context rows only. Reads d_in (= d_out),
/// d_context, hidden, heads.
struct gated_adapter_kind {
  static constexpr std::string_view name = "gated_adapter";
  static constexpr bool per_row = true, uses_context = true;
  static void check(const bridge_dims& d) {
    bridge_detail::need_attention(d);
    bridge_detail::need(d.d_out == d.d_in, "d_out", "must equal d_in (the adapter adds to the host's residual stream)");
    bridge_detail::need(d.d_context > 0, "d_context", "must be positive");
  }
  template <class S>
  static void declare(const bridge_dims& d, parameter_list<S>& ps, bridge_rng& rng) {
    bridge_detail::add_norm(ps, "norm", d.d_in);
    bridge_detail::add_attention(ps, rng, "attn", d.hidden, d.d_in, d.d_context, d.d_in, false);
    ps.add("gate", {1});  // 0: the identity
  }
  template <class S>
  struct tape {
    std::vector<S> a, z;  // norm(x), attention output
    bridge_ops::mha_tape<S> attn;
  };
  template <class S>
  static void forward(const bridge_dims& d, const parameter_list<S>& ps, const S* x, std::int64_t n, const S* c,
                      std::int64_t m, tape<S>& t, S* y) {
    const auto D = d.d_in;
    t.a.resize(std::size_t(n * D)), t.z.resize(t.a.size());
    bridge_ops::layer_norm(x, n, D, ps.v("norm.weight"), ps.v("norm.bias"), S(bridge_norm_eps), t.a.data());
    bridge_ops::mha(t.a.data(), n, D, c, m, d.d_context, bridge_detail::attention_of(ps, "attn", true, false), d.hidden,
                    d.heads, D, t.attn, t.z.data());
    const S gate = math::tanh_of(ps.v("gate")[0]);
    for (std::size_t i = 0; i < t.z.size(); ++i) y[i] = x[i] + gate * t.z[i];
  }
  template <class S>
  static void backward(const bridge_dims& d, parameter_list<S>& ps, const S* x, std::int64_t n, const S* c,
                       std::int64_t m, const tape<S>& t, const S* dy, S* dx, S* dc) {
    const auto D = d.d_in;
    const S gate = math::tanh_of(ps.v("gate")[0]);
    std::vector<S> dz(t.z.size()), da(t.z.size());
    S dgate = 0;
    for (std::size_t i = 0; i < dz.size(); ++i) {
      dx[i] += dy[i];
      dgate += dy[i] * t.z[i];
      dz[i] = gate * dy[i];
    }
    ps.g("gate")[0] += (S(1) - gate * gate) * dgate;
    bridge_ops::mha_backward(t.a.data(), n, D, c, m, d.d_context, bridge_detail::attention_of(ps, "attn", true, false),
                             d.hidden, d.heads, D, t.attn, dz.data(), da.data(), dc,
                             bridge_detail::attention_grads(ps, "attn", true, false));
    bridge_ops::layer_norm_backward(x, da.data(), n, D, ps.v("norm.weight"), S(bridge_norm_eps), dx,
                                    ps.g("norm.weight"), ps.g("norm.bias"));
  }
  template <class S>
  static void zero_last(parameter_list<S>& ps) {
    bridge_detail::zero(ps.at("gate"));
  }
};

/// LoRA on a frozen linear layer: y = W x + b + (alpha / rank) · B A x, with W, b frozen and B zero at
/// initialisation (the bridge starts as the frozen layer). Reads d_in, d_out, rank, alpha.
struct lora_kind {
  static constexpr std::string_view name = "lora";
  static constexpr bool per_row = true, uses_context = false;
  static void check(const bridge_dims& d) {
    bridge_detail::need(d.rank > 0, "rank", "must be positive");
    bridge_detail::need(d.alpha > 0, "alpha", "must be positive (the update's scale is alpha / rank)");
  }
  template <class S>
  static void declare(const bridge_dims& d, parameter_list<S>& ps, bridge_rng& rng) {
    bridge_detail::add_linear(ps, rng, "base", d.d_out, d.d_in, true, true);
    rng.fill(ps.add("lora_a", {d.rank, d.d_in}), 1 / std::sqrt(double(d.d_in)));
    ps.add("lora_b", {d.d_out, d.rank});
  }
  template <class S>
  struct tape {
    std::vector<S> h;  // A x
  };
  template <class S>
  static void forward(const bridge_dims& d, const parameter_list<S>& ps, const S* x, std::int64_t n, const S*,
                      std::int64_t, tape<S>& t, S* y) {
    const S scale = S(d.alpha / double(d.rank));
    bridge_ops::linear(x, n, d.d_in, ps.v("base.weight"), ps.v("base.bias"), d.d_out, y);
    t.h.resize(std::size_t(n * d.rank));
    bridge_ops::linear(x, n, d.d_in, ps.v("lora_a"), static_cast<const S*>(nullptr), d.rank, t.h.data());
    std::vector<S> u(std::size_t(n * d.d_out));
    bridge_ops::linear(t.h.data(), n, d.rank, ps.v("lora_b"), static_cast<const S*>(nullptr), d.d_out, u.data());
    for (std::size_t i = 0; i < u.size(); ++i) y[i] += scale * u[i];
  }
  template <class S>
  static void backward(const bridge_dims& d, parameter_list<S>& ps, const S* x, std::int64_t n, const S*, std::int64_t,
                       const tape<S>& t, const S* dy, S* dx, S*) {
    const S scale = S(d.alpha / double(d.rank));
    bridge_ops::linear_backward(x, dy, n, d.d_in, ps.v("base.weight"), d.d_out, dx, static_cast<S*>(nullptr),
                                static_cast<S*>(nullptr));  // frozen
    std::vector<S> sdy(dy, dy + n * d.d_out), dh(std::size_t(n * d.rank));
    for (auto& v : sdy) v *= scale;
    bridge_ops::linear_backward(t.h.data(), sdy.data(), n, d.rank, ps.v("lora_b"), d.d_out, dh.data(), ps.g("lora_b"),
                                static_cast<S*>(nullptr));
    bridge_ops::linear_backward(x, dh.data(), n, d.d_in, ps.v("lora_a"), d.rank, dx, ps.g("lora_a"),
                                static_cast<S*>(nullptr));
  }
  template <class S>
  static void zero_last(parameter_list<S>& ps) {
    bridge_detail::zero(ps.at("lora_b"));
  }
};

/// Calls f(Kind{}) for the kind named `name` (the CLI's --kind, a file's metadata).
template <class F>
decltype(auto) with_bridge_kind(std::string_view name, F&& f) {
  if (name == linear_kind::name) return f(linear_kind{});
  if (name == mlp_kind::name) return f(mlp_kind{});
  if (name == attention_pool_kind::name) return f(attention_pool_kind{});
  if (name == perceiver_kind::name) return f(perceiver_kind{});
  if (name == gated_adapter_kind::name) return f(gated_adapter_kind{});
  if (name == lora_kind::name) return f(lora_kind{});
  throw usage_error("bridge kind", "'" + std::string(name) +
                                       "' is not a kind (linear, mlp, attention_pool, perceiver, gated_adapter, lora)");
}

}  // namespace nexus::fusion
