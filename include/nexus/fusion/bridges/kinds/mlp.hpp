// An MLP projector bridge (a kind: bridges/kinds.hpp lists them; bridges/parameters.hpp says what a kind supplies).
#pragma once

#include "nexus/fusion/bridges/parameters.hpp"

namespace nexus::fusion {

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

  /// The same on a device, composed from the building blocks of bridges/bridge_cuda.hpp (`dev`: the
  /// cuda_bridge; its tape holds "x" and, for kinds that read it, "c").
  template <class Device>
  static void device_forward(Device& dev, float* y) {
    const auto& d = dev.dims();
    const int n = dev.rows(), H = int(d.hidden);
    float* h1 = dev.tmp("h1", std::size_t(n) * H);
    float* h2 = dev.tmp("h2", std::size_t(n) * H);
    float* h3 = dev.tmp("h3", std::size_t(n) * H);
    dev.linear(dev.at("x"), n, int(d.d_in), dev.v("fc1.weight"), dev.v("fc1.bias"), H, h1);
    dev.layer_norm(h1, n, H, "norm", h2, h3);  // norm and GELU in one pass
    dev.linear(h3, n, H, dev.v("fc2.weight"), dev.v("fc2.bias"), int(d.d_out), y);
  }
  template <class Device>
  static void device_backward(Device& dev, const float* dy, float* dx, [[maybe_unused]] float* dc) {
    const auto& d = dev.dims();
    const int n = dev.rows(), H = int(d.hidden);
    float* dh3 = dev.zeroed("s.dh3", std::size_t(n) * H);
    float* dh1 = dev.zeroed("s.dh1", std::size_t(n) * H);
    dev.linear_backward(dev.at("h3"), dy, n, H, dev.v("fc2.weight"), int(d.d_out), dh3, dev.g("fc2.weight"),
                        dev.g("fc2.bias"));
    dev.layer_norm_backward(dev.at("h1"), dh3, dev.at("h2"), n, H, "norm", dh1);  // through GELU and the norm
    dev.linear_backward(dev.at("x"), dh1, n, int(d.d_in), dev.v("fc1.weight"), H, dx, dev.g("fc1.weight"),
                        dev.g("fc1.bias"));
  }
};

}  // namespace nexus::fusion
