// Attention pooling bridge (a kind: bridges/kinds.hpp lists them; bridges/parameters.hpp says what a kind supplies).
#pragma once

#include "nexus/fusion/bridges/parameters.hpp"

namespace nexus::fusion {

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

  /// The same on a device, composed from the building blocks of bridges/bridge_cuda.hpp (`dev`: the
  /// cuda_bridge; its tape holds "x" and, for kinds that read it, "c").
  template <class Device>
  static void device_forward(Device& dev, float* y) {
    const auto& d = dev.dims();
    dev.mha(dev.v("queries"), int(d.queries), int(d.hidden), dev.at("x"), dev.rows(), int(d.d_in), "attn", false, true,
            "attn", y);
  }
  template <class Device>
  static void device_backward(Device& dev, const float* dy, float* dx, [[maybe_unused]] float* dc) {
    const auto& d = dev.dims();
    dev.mha_backward(dev.v("queries"), int(d.queries), int(d.hidden), dev.at("x"), dev.rows(), int(d.d_in), "attn",
                     false, true, "attn", dy, dev.g("queries"), dx);
  }
};

}  // namespace nexus::fusion
