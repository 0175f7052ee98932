// LoRA on a frozen linear layer bridge (a kind: bridges/kinds.hpp lists them; bridges/parameters.hpp says what a kind supplies).
#pragma once

#include "nexus/fusion/bridges/parameters.hpp"

namespace nexus::fusion {

/// LoRA on a frozen linear layer: y = W x + b + (alpha / rank) · B A x, with W, b frozen and B zero at
/// initialisation (the bridge starts as the frozen layer). Reads d_in, d_out, rank, alpha.
struct lora_kind {
  static constexpr std::string_view name = "lora";
  static constexpr bool per_row = true, uses_context = false;
  static constexpr std::string_view affine_layer = "base";  // start_at writes an affine map here
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

  /// The same on a device, composed from the building blocks of bridges/bridge_cuda.hpp (`dev`: the
  /// cuda_bridge; its tape holds "x" and, for kinds that read it, "c").
  template <class Device>
  static void device_forward(Device& dev, float* y) {
    const auto& d = dev.dims();
    const int n = dev.rows(), in = int(d.d_in), out = int(d.d_out), r = int(d.rank);
    const float* x = dev.at("x");
    float* h = dev.tmp("h", std::size_t(n) * r);
    float* u = dev.tmp("u", std::size_t(n) * out);
    dev.linear(x, n, in, dev.v("base.weight"), dev.v("base.bias"), out, y);
    dev.linear(x, n, in, dev.v("lora_a"), nullptr, r, h);
    dev.linear(h, n, r, dev.v("lora_b"), nullptr, out, u);
    dev.add(y, u, float(d.alpha / double(d.rank)), std::int64_t(n) * out);
  }
  template <class Device>
  static void device_backward(Device& dev, const float* dy, float* dx, [[maybe_unused]] float* dc) {
    const auto& d = dev.dims();
    const int n = dev.rows(), in = int(d.d_in), out = int(d.d_out), r = int(d.rank);
    const float* x = dev.at("x");
    float* sdy = dev.zeroed("s.sdy", std::size_t(n) * out);
    float* dh = dev.zeroed("s.dh", std::size_t(n) * r);
    dev.add(sdy, dy, float(d.alpha / double(d.rank)), std::int64_t(n) * out);
    dev.linear_backward(x, dy, n, in, dev.v("base.weight"), out, dx, nullptr, nullptr);  // frozen
    dev.linear_backward(dev.at("h"), sdy, n, r, dev.v("lora_b"), out, dh, dev.g("lora_b"), nullptr);
    dev.linear_backward(x, dh, n, in, dev.v("lora_a"), r, dx, dev.g("lora_a"), nullptr);
  }
};

}  // namespace nexus::fusion
