// A Perceiver resampler bridge (a kind: bridges/kinds.hpp lists them; bridges/parameters.hpp says what a kind supplies).
#pragma once

#include "nexus/fusion/bridges/parameters.hpp"

namespace nexus::fusion {

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

  /// The same on a device, composed from the building blocks of bridges/bridge_cuda.hpp (`dev`: the
  /// cuda_bridge; its tape holds "x" and, for kinds that read it, "c").
  template <class Device>
  static void device_forward(Device& dev, float* y) {
    const auto& d = dev.dims();
    const int n = dev.rows(), in = int(d.d_in), H = int(d.hidden), k = int(d.queries);
    const std::size_t kw = std::size_t(k) * H;
    float* xn = dev.tmp("xn", std::size_t(n) * in);
    dev.layer_norm(dev.at("x"), n, in, "input_norm", xn);
    float* lat = dev.tmp("lat", kw);
    float* z = dev.tmp("s.z", kw);
    dev.copy(lat, dev.v("latents"), kw);
    for (std::int64_t l = 0; l < d.depth; ++l) {
      const auto p = layer(l), t = "t" + std::to_string(l) + ".";
      dev.copy(dev.tmp(t + "l0", kw), lat, kw);
      dev.layer_norm(lat, k, H, p + "cross_norm", dev.tmp(t + "a", kw));
      dev.mha(dev.at(t + "a"), k, H, xn, n, in, p + "cross", true, false, t + "cross", z);
      dev.add(lat, z, 1.0f, std::int64_t(kw));
      dev.copy(dev.tmp(t + "l1", kw), lat, kw);
      dev.layer_norm(lat, k, H, p + "self_norm", dev.tmp(t + "b", kw));
      dev.mha(dev.at(t + "b"), k, H, dev.at(t + "b"), k, H, p + "self", true, false, t + "self", z);
      dev.add(lat, z, 1.0f, std::int64_t(kw));
    }
    float* lo = dev.tmp("lo", kw);
    dev.layer_norm(lat, k, H, "out_norm", lo);
    dev.linear(lo, k, H, dev.v("out.weight"), dev.v("out.bias"), int(d.d_out), y);
  }
  template <class Device>
  static void device_backward(Device& dev, const float* dy, float* dx, [[maybe_unused]] float* dc) {
    const auto& d = dev.dims();
    const int n = dev.rows(), in = int(d.d_in), H = int(d.hidden), k = int(d.queries);
    const std::size_t kw = std::size_t(k) * H;
    float* dlo = dev.zeroed("s.dlo", kw);
    float* dlat = dev.zeroed("s.dlat", kw);
    float* dxn = dev.zeroed("s.dxn", std::size_t(n) * in);
    dev.linear_backward(dev.at("lo"), dy, k, H, dev.v("out.weight"), int(d.d_out), dlo, dev.g("out.weight"),
                        dev.g("out.bias"));
    dev.layer_norm_backward(dev.at("lat"), dlo, nullptr, k, H, "out_norm", dlat);
    for (std::int64_t l = d.depth - 1; l >= 0; --l) {
      const auto p = layer(l), t = "t" + std::to_string(l) + ".";
      float* dn = dev.zeroed("s.dn", kw);
      dev.mha_backward(dev.at(t + "b"), k, H, dev.at(t + "b"), k, H, p + "self", true, false, t + "self", dlat, dn, dn);
      dev.layer_norm_backward(dev.at(t + "l1"), dn, nullptr, k, H, p + "self_norm", dlat);
      dn = dev.zeroed("s.dn", kw);
      dev.mha_backward(dev.at(t + "a"), k, H, dev.at("xn"), n, in, p + "cross", true, false, t + "cross", dlat, dn,
                       dxn);
      dev.layer_norm_backward(dev.at(t + "l0"), dn, nullptr, k, H, p + "cross_norm", dlat);
    }
    dev.add(dev.g("latents"), dlat, 1.0f, std::int64_t(kw));
    dev.layer_norm_backward(dev.at("x"), dxn, nullptr, n, in, "input_norm", dx);
  }
};

}  // namespace nexus::fusion
