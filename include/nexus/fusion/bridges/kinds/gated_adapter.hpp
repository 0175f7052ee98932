// A gated cross-attention adapter bridge (a kind: bridges/kinds.hpp lists them; bridges/parameters.hpp says what a kind supplies).
#pragma once

#include "nexus/fusion/bridges/parameters.hpp"

namespace nexus::fusion {

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

  /// The same on a device, composed from the building blocks of bridges/bridge_cuda.hpp (`dev`: the
  /// cuda_bridge; its tape holds "x" and, for kinds that read it, "c").
  template <class Device>
  static void device_forward(Device& dev, float* y) {
    const auto& d = dev.dims();
    const int n = dev.rows(), in = int(d.d_in);
    const float* x = dev.at("x");
    float* a = dev.tmp("a", std::size_t(n) * in);
    float* z = dev.tmp("z", std::size_t(n) * in);
    dev.layer_norm(x, n, in, "norm", a);
    dev.mha(a, n, in, dev.at("c"), dev.context_rows(), int(d.d_context), "attn", true, false, "attn", z);
    dev.gate_residual(x, z, dev.v("gate"), std::int64_t(n) * in, y);
  }
  template <class Device>
  static void device_backward(Device& dev, const float* dy, float* dx, [[maybe_unused]] float* dc) {
    const auto& d = dev.dims();
    const int n = dev.rows(), in = int(d.d_in);
    float* dz = dev.tmp("s.dz", std::size_t(n) * in);
    float* da = dev.zeroed("s.da", std::size_t(n) * in);
    dev.gate_residual_backward(dy, dev.at("z"), dev.v("gate"), std::int64_t(n) * in, dx, dz, dev.g("gate"));
    dev.mha_backward(dev.at("a"), n, in, dev.at("c"), dev.context_rows(), int(d.d_context), "attn", true, false, "attn",
                     dz, da, dc);
    dev.layer_norm_backward(dev.at("x"), da, nullptr, n, in, "norm", dx);
  }
};

}  // namespace nexus::fusion
