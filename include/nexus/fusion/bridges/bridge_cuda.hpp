// A bridge on a CUDA device (link nexus::cuda): the kinds of nexus/fusion/bridges/kinds.hpp composed from
// the launchers of nexus/backend/cuda/bridge_launch.hpp, step for step as on the CPU, in fp32.
// cuda_bridge<Kind> takes its parameters from a CPU bridge<Kind, float>, runs forward and backward on
// the device (the tape stays there) and hands the gradients back, so the CPU bridge's optimizer and
// file stay the one place parameters live.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "nexus/backend/cuda/bridge_launch.hpp"
#include "nexus/backend/cuda/status.hpp"
#include "nexus/fusion/bridges/bridge.hpp"

namespace nexus::fusion {

namespace bridge_detail {
/// fp32 device memory of at least n values.
struct device_array {
  cuda::device_buffer buf;
  std::size_t n = 0;
  float* get() const { return static_cast<float*>(buf.get()); }
};
}  // namespace bridge_detail

template <class Kind>
class cuda_bridge {
  static constexpr cudaStream_t st = nullptr;  // the default stream: ordered with the blocking copies

 public:
  explicit cuda_bridge(const bridge<Kind, float>& b) : d_(b.dims()) { upload(b); }

  /// Copies the CPU bridge's parameter values to the device (after each optimizer step).
  void upload(const bridge<Kind, float>& b) {
    if (!(b.dims() == d_)) throw usage_error("cuda_bridge", "a bridge of other dimensions");
    for (const auto& p : b.parameters()) {
      copy_in(array(values_, p.name, p.value.size()), p.value);
      if (!grads_.count(p.name)) zero(array(grads_, p.name, p.value.size()), p.value.size());
    }
  }
  void zero_grad() {
    for (auto& [name, a] : grads_) zero(a.get(), a.n);
  }
  /// Replaces the CPU bridge's gradients with the device's.
  void download_grads(bridge<Kind, float>& b) const {
    for (auto& p : b.parameters()) copy_out(grads_.at(p.name).get(), p.grad);
  }

  /// As bridge::forward: rows x [n, d_in] (context [m, d_context]) -> [output_rows, d_out]; keeps the tape.
  std::vector<float> forward(std::span<const float> x, std::span<const float> context = {}) {
    n_ = rows_of(x, d_.d_in, "x");
    m_ = Kind::uses_context ? rows_of(context, d_.d_context, "context") : 0;
    copy_in(tmp("x", x.size()), x);
    if (Kind::uses_context) copy_in(tmp("c", context.size()), context);
    const int out_rows = Kind::per_row ? n_ : int(d_.queries);
    float* y = tmp("y", std::size_t(out_rows) * std::size_t(d_.d_out));
    run_forward(y);
    std::vector<float> host(std::size_t(out_rows) * std::size_t(d_.d_out));
    copy_out(y, host);
    return host;
  }

  /// As bridge::backward: adds the parameters' gradients (on the device) and returns dx (dcontext when asked).
  std::vector<float> backward(std::span<const float> dy, std::vector<float>* dcontext = nullptr) {
    const int out_rows = Kind::per_row ? n_ : int(d_.queries);
    if (std::int64_t(dy.size()) != std::int64_t(out_rows) * d_.d_out)
      throw usage_error("cuda_bridge backward", "dy of " + std::to_string(dy.size()) + " values for " +
                                                    std::to_string(out_rows) + " rows of " + std::to_string(d_.d_out));
    copy_in(tmp("dy", dy.size()), dy);
    float* dx = zeroed("dx", std::size_t(n_) * std::size_t(d_.d_in));
    float* dc = Kind::uses_context ? zeroed("dc", std::size_t(m_) * std::size_t(d_.d_context)) : nullptr;
    run_backward(at("dy"), dx, dc);
    std::vector<float> host(std::size_t(n_) * std::size_t(d_.d_in));
    copy_out(dx, host);
    if (dcontext) {
      dcontext->assign(std::size_t(m_) * std::size_t(d_.d_context), 0.0f);
      if (dc) copy_out(dc, *dcontext);
    }
    return host;
  }

 private:
  using arrays = std::map<std::string, bridge_detail::device_array>;

  static float* array(arrays& a, const std::string& name, std::size_t n) {
    auto& e = a[name];
    if (e.n < n || !e.buf.get()) e.buf = cuda::device_buffer(n * sizeof(float)), e.n = n;
    return e.get();
  }
  static void copy_in(float* dst, std::span<const float> src) {
    cuda::check(cudaMemcpy(dst, src.data(), src.size_bytes(), cudaMemcpyHostToDevice), "bridge upload");
  }
  static void copy_out(const float* src, std::vector<float>& dst) {
    cuda::check(cudaMemcpy(dst.data(), src, dst.size() * sizeof(float), cudaMemcpyDeviceToHost), "bridge download");
  }
  static void zero(float* p, std::size_t n) {
    cuda::check(cudaMemsetAsync(p, 0, n * sizeof(float), st), "bridge zero");
  }
  /// A tape or scratch array of at least n floats (kept between calls, grown on demand).
  float* tmp(const std::string& name, std::size_t n) { return array(tape_, name, n); }
  float* zeroed(const std::string& name, std::size_t n) {
    float* p = tmp(name, n);
    zero(p, n);
    return p;
  }
  float* at(const std::string& name) { return tape_.at(name).get(); }
  const float* v(const std::string& name) const { return values_.at(name).get(); }
  float* g(const std::string& name) const { return grads_.at(name).get(); }
  int rows_of(std::span<const float> x, std::int64_t width, const char* what) const {
    if (x.empty() || x.size() % std::size_t(width) != 0)
      throw usage_error("cuda_bridge", std::string(what) + " has " + std::to_string(x.size()) +
                                           " values, not rows of " + std::to_string(width));
    return int(x.size() / std::size_t(width));
  }

  static constexpr float eps = float(bridge_norm_eps);

  // ---- the building blocks of bridge_ops.hpp on the device -------------------------------------------

  void layer_norm(const float* x, int n, int width, const std::string& p, float* y, float* gelu_out = nullptr) {
    cuda::bridge_kernels::layer_norm(x, n, width, v(p + ".weight"), v(p + ".bias"), eps, y, gelu_out, st);
  }
  void layer_norm_backward(const float* x, const float* dy, const float* gelu_in, int n, int width,
                           const std::string& p, float* dx) {
    cuda::bridge_kernels::layer_norm_backward(x, dy, gelu_in, n, width, v(p + ".weight"), eps, dx, g(p + ".weight"),
                                              g(p + ".bias"), tmp("s.norm", 2 * std::size_t(n) * std::size_t(width)),
                                              st);
  }
  /// y = wo · attend(wq xq, wk xk, wv xk) + bo, parameters under prefix p, tape under t.
  void mha(const float* xq, int nq, int dq, const float* xk, int nk, int dk, const std::string& p, bool has_q,
           bool out_bias, const std::string& t, float* y) {
    namespace K = cuda::bridge_kernels;
    const int w = int(d_.hidden), heads = int(d_.heads);
    float* q = const_cast<float*>(xq);
    if (has_q) K::linear(xq, nq, dq, v(p + ".q.weight"), nullptr, w, q = tmp(t + ".q", std::size_t(nq) * w), false, st);
    float* k = tmp(t + ".k", std::size_t(nk) * w);
    float* vv = tmp(t + ".v", std::size_t(nk) * w);
    K::linear(xk, nk, dk, v(p + ".k.weight"), nullptr, w, k, false, st);
    K::linear(xk, nk, dk, v(p + ".v.weight"), nullptr, w, vv, false, st);
    float* pr = tmp(t + ".p", std::size_t(heads) * nq * nk);
    float* o = tmp(t + ".o", std::size_t(nq) * w);
    K::attend(q, nq, k, vv, nk, w, heads, pr, o, st);
    K::linear(o, nq, w, v(p + ".o.weight"), out_bias ? v(p + ".o.bias") : nullptr, int(out_dim_of_attention(p)), y,
              false, st);
  }
  void mha_backward(const float* xq, int nq, int dq, const float* xk, int nk, int dk, const std::string& p, bool has_q,
                    bool out_bias, const std::string& t, const float* dy, float* dxq, float* dxk) {
    namespace K = cuda::bridge_kernels;
    const int w = int(d_.hidden), heads = int(d_.heads), out = int(out_dim_of_attention(p));
    const float* q = has_q ? at(t + ".q") : xq;
    float* d_o = zeroed("s.do", std::size_t(nq) * w);
    K::linear_backward(at(t + ".o"), dy, nq, w, v(p + ".o.weight"), out, d_o, g(p + ".o.weight"),
                       out_bias ? g(p + ".o.bias") : nullptr, st);
    float* dqb = zeroed("s.dq", std::size_t(nq) * w);
    float* dkb = zeroed("s.dk", std::size_t(nk) * w);
    float* dvb = zeroed("s.dv", std::size_t(nk) * w);
    K::attend_backward(q, nq, at(t + ".k"), at(t + ".v"), nk, w, heads, at(t + ".p"), d_o,
                       tmp("s.ds", std::size_t(heads) * nq * nk), dqb, dkb, dvb, st);
    if (has_q) K::linear_backward(xq, dqb, nq, dq, v(p + ".q.weight"), w, dxq, g(p + ".q.weight"), nullptr, st);
    else if (dxq) K::add(dxq, dqb, 1.0f, std::int64_t(nq) * w, st);
    K::linear_backward(xk, dkb, nk, dk, v(p + ".k.weight"), w, dxk, g(p + ".k.weight"), nullptr, st);
    K::linear_backward(xk, dvb, nk, dk, v(p + ".v.weight"), w, dxk, g(p + ".v.weight"), nullptr, st);
  }
  std::int64_t out_dim_of_attention(const std::string& p) const { return shapes_of(p + ".o.weight"); }
  std::int64_t shapes_of(const std::string& name) const { return std::int64_t(values_.at(name).n) / d_.hidden; }
  void copy(float* dst, const float* src, std::size_t n) {
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, st), "bridge copy");
  }

  // ---- the kinds ------------------------------------------------------------------------------------

  void run_forward(float* y) {
    namespace K = cuda::bridge_kernels;
    const int n = n_, in = int(d_.d_in), out = int(d_.d_out), H = int(d_.hidden);
    const float* x = at("x");
    if constexpr (std::is_same_v<Kind, linear_kind>) {
      K::linear(x, n, in, v("linear.weight"), v("linear.bias"), out, y, false, st);
    } else if constexpr (std::is_same_v<Kind, mlp_kind>) {
      float* h1 = tmp("h1", std::size_t(n) * H);
      float* h2 = tmp("h2", std::size_t(n) * H);
      float* h3 = tmp("h3", std::size_t(n) * H);
      K::linear(x, n, in, v("fc1.weight"), v("fc1.bias"), H, h1, false, st);
      layer_norm(h1, n, H, "norm", h2, h3);  // norm and GELU in one pass
      K::linear(h3, n, H, v("fc2.weight"), v("fc2.bias"), out, y, false, st);
    } else if constexpr (std::is_same_v<Kind, attention_pool_kind>) {
      mha(v("queries"), int(d_.queries), H, x, n, in, "attn", false, true, "attn", y);
    } else if constexpr (std::is_same_v<Kind, gated_adapter_kind>) {
      float* a = tmp("a", std::size_t(n) * in);
      float* z = tmp("z", std::size_t(n) * in);
      layer_norm(x, n, in, "norm", a);
      mha(a, n, in, at("c"), m_, int(d_.d_context), "attn", true, false, "attn", z);
      K::gate_residual(x, z, v("gate"), std::int64_t(n) * in, y, st);
    } else if constexpr (std::is_same_v<Kind, lora_kind>) {
      float* h = tmp("h", std::size_t(n) * d_.rank);
      float* u = tmp("u", std::size_t(n) * out);
      K::linear(x, n, in, v("base.weight"), v("base.bias"), out, y, false, st);
      K::linear(x, n, in, v("lora_a"), nullptr, int(d_.rank), h, false, st);
      K::linear(h, n, int(d_.rank), v("lora_b"), nullptr, out, u, false, st);
      K::add(y, u, float(d_.alpha / double(d_.rank)), std::int64_t(n) * out, st);
    } else if constexpr (std::is_same_v<Kind, perceiver_kind>) {
      const int k = int(d_.queries);
      const std::size_t kw = std::size_t(k) * H;
      float* xn = tmp("xn", std::size_t(n) * in);
      layer_norm(x, n, in, "input_norm", xn);
      float* lat = tmp("lat", kw);
      float* z = tmp("s.z", kw);
      copy(lat, v("latents"), kw);
      for (std::int64_t l = 0; l < d_.depth; ++l) {
        const auto p = perceiver_kind::layer(l), t = "t" + std::to_string(l) + ".";
        copy(tmp(t + "l0", kw), lat, kw);
        layer_norm(lat, k, H, p + "cross_norm", tmp(t + "a", kw));
        mha(at(t + "a"), k, H, xn, n, in, p + "cross", true, false, t + "cross", z);
        K::add(lat, z, 1.0f, std::int64_t(kw), st);
        copy(tmp(t + "l1", kw), lat, kw);
        layer_norm(lat, k, H, p + "self_norm", tmp(t + "b", kw));
        mha(at(t + "b"), k, H, at(t + "b"), k, H, p + "self", true, false, t + "self", z);
        K::add(lat, z, 1.0f, std::int64_t(kw), st);
      }
      float* lo = tmp("lo", kw);
      layer_norm(lat, k, H, "out_norm", lo);
      K::linear(lo, k, H, v("out.weight"), v("out.bias"), out, y, false, st);
    } else {
      static_assert(sizeof(Kind) == 0, "a bridge kind without a CUDA composition in nexus/fusion/bridges/bridge_cuda.hpp");
    }
    if constexpr (Kind::per_row && !Kind::uses_context)
      if (d_.skip) K::linear(x, n, in, v("skip.weight"), v("skip.bias"), out, y, true, st);
  }

  void run_backward(const float* dy, float* dx, float* dc) {
    namespace K = cuda::bridge_kernels;
    const int n = n_, in = int(d_.d_in), out = int(d_.d_out), H = int(d_.hidden);
    const float* x = at("x");
    if constexpr (std::is_same_v<Kind, linear_kind>) {
      K::linear_backward(x, dy, n, in, v("linear.weight"), out, dx, g("linear.weight"), g("linear.bias"), st);
    } else if constexpr (std::is_same_v<Kind, mlp_kind>) {
      float* dh3 = zeroed("s.dh3", std::size_t(n) * H);
      float* dh1 = zeroed("s.dh1", std::size_t(n) * H);
      K::linear_backward(at("h3"), dy, n, H, v("fc2.weight"), out, dh3, g("fc2.weight"), g("fc2.bias"), st);
      layer_norm_backward(at("h1"), dh3, at("h2"), n, H, "norm", dh1);  // through GELU and the norm
      K::linear_backward(x, dh1, n, in, v("fc1.weight"), H, dx, g("fc1.weight"), g("fc1.bias"), st);
    } else if constexpr (std::is_same_v<Kind, attention_pool_kind>) {
      mha_backward(v("queries"), int(d_.queries), H, x, n, in, "attn", false, true, "attn", dy, g("queries"), dx);
    } else if constexpr (std::is_same_v<Kind, gated_adapter_kind>) {
      float* dz = tmp("s.dz", std::size_t(n) * in);
      float* da = zeroed("s.da", std::size_t(n) * in);
      K::gate_residual_backward(dy, at("z"), v("gate"), std::int64_t(n) * in, dx, dz, g("gate"), st);
      mha_backward(at("a"), n, in, at("c"), m_, int(d_.d_context), "attn", true, false, "attn", dz, da, dc);
      layer_norm_backward(x, da, nullptr, n, in, "norm", dx);
    } else if constexpr (std::is_same_v<Kind, lora_kind>) {
      const int r = int(d_.rank);
      float* sdy = zeroed("s.sdy", std::size_t(n) * out);
      float* dh = zeroed("s.dh", std::size_t(n) * r);
      K::add(sdy, dy, float(d_.alpha / double(d_.rank)), std::int64_t(n) * out, st);
      K::linear_backward(x, dy, n, in, v("base.weight"), out, dx, nullptr, nullptr, st);  // frozen
      K::linear_backward(at("h"), sdy, n, r, v("lora_b"), out, dh, g("lora_b"), nullptr, st);
      K::linear_backward(x, dh, n, in, v("lora_a"), r, dx, g("lora_a"), nullptr, st);
    } else if constexpr (std::is_same_v<Kind, perceiver_kind>) {
      const int k = int(d_.queries);
      const std::size_t kw = std::size_t(k) * H;
      float* dlo = zeroed("s.dlo", kw);
      float* dlat = zeroed("s.dlat", kw);
      float* dxn = zeroed("s.dxn", std::size_t(n) * in);
      K::linear_backward(at("lo"), dy, k, H, v("out.weight"), out, dlo, g("out.weight"), g("out.bias"), st);
      layer_norm_backward(at("lat"), dlo, nullptr, k, H, "out_norm", dlat);
      for (std::int64_t l = d_.depth - 1; l >= 0; --l) {
        const auto p = perceiver_kind::layer(l), t = "t" + std::to_string(l) + ".";
        float* dn = zeroed("s.dn", kw);
        mha_backward(at(t + "b"), k, H, at(t + "b"), k, H, p + "self", true, false, t + "self", dlat, dn, dn);
        layer_norm_backward(at(t + "l1"), dn, nullptr, k, H, p + "self_norm", dlat);
        dn = zeroed("s.dn", kw);
        mha_backward(at(t + "a"), k, H, at("xn"), n, in, p + "cross", true, false, t + "cross", dlat, dn, dxn);
        layer_norm_backward(at(t + "l0"), dn, nullptr, k, H, p + "cross_norm", dlat);
      }
      K::add(g("latents"), dlat, 1.0f, std::int64_t(kw), st);
      layer_norm_backward(x, dxn, nullptr, n, in, "input_norm", dx);
    }
    if constexpr (Kind::per_row && !Kind::uses_context)
      if (d_.skip) K::linear_backward(x, dy, n, in, v("skip.weight"), out, dx, g("skip.weight"), g("skip.bias"), st);
    cuda::check(cudaStreamSynchronize(st), "bridge backward");
  }

  bridge_dims d_;
  arrays values_, grads_, tape_;
  int n_ = 0, m_ = 0;
};

}  // namespace nexus::fusion
