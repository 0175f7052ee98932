// A linear map bridge (a kind: bridges/kinds.hpp lists them; bridges/parameters.hpp says what a kind supplies).
#pragma once

#include "nexus/fusion/bridges/parameters.hpp"

namespace nexus::fusion {

/// y = W x + b. Reads d_in, d_out.
struct linear_kind {
  static constexpr std::string_view name = "linear";
  static constexpr bool per_row = true, uses_context = false;
  static constexpr std::string_view affine_layer = "linear";  // start_at writes an affine map here
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

  /// The same on a device, composed from the building blocks of bridges/bridge_cuda.hpp (`dev`: the
  /// cuda_bridge; its tape holds "x" and, for kinds that read it, "c").
  template <class Device>
  static void device_forward(Device& dev, float* y) {
    const auto& d = dev.dims();
    dev.linear(dev.at("x"), dev.rows(), int(d.d_in), dev.v("linear.weight"), dev.v("linear.bias"), int(d.d_out), y);
  }
  template <class Device>
  static void device_backward(Device& dev, const float* dy, float* dx, [[maybe_unused]] float* dc) {
    const auto& d = dev.dims();
    dev.linear_backward(dev.at("x"), dy, dev.rows(), int(d.d_in), dev.v("linear.weight"), int(d.d_out), dx,
                        dev.g("linear.weight"), dev.g("linear.bias"));
  }
};

}  // namespace nexus::fusion
