// A bridge on a CUDA device (link nexus::cuda): each kind of nexus/fusion/bridges/kinds.hpp composes
// its own device_forward/backward (in its kind file) from the building blocks below, which wrap the
// launchers of nexus/backend/cuda/bridge_launch.hpp, step for step as on the CPU, in fp32.
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
  int rows_of(std::span<const float> x, std::int64_t width, const char* what) const {
    if (x.empty() || x.size() % std::size_t(width) != 0)
      throw usage_error("cuda_bridge", std::string(what) + " has " + std::to_string(x.size()) +
                                           " values, not rows of " + std::to_string(width));
    return int(x.size() / std::size_t(width));
  }

  static constexpr float eps = float(bridge_norm_eps);

 public:
  // ---- the building blocks of ops.hpp on the device: what the kinds' device_forward/backward compose --

  const bridge_dims& dims() const noexcept { return d_; }
  int rows() const noexcept { return n_; }          // input rows of the current call
  int context_rows() const noexcept { return m_; }  // context rows of the current call
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
  void copy(float* dst, const float* src, std::size_t n) {
    cuda::check(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, st), "bridge copy");
  }
  /// y (+)= x Wᵀ + b.
  void linear(const float* x, int n, int in, const float* w, const float* b, int out, float* y,
              bool accumulate = false) {
    cuda::bridge_kernels::linear(x, n, in, w, b, out, y, accumulate, st);
  }
  void linear_backward(const float* x, const float* dy, int n, int in, const float* w, int out, float* dx, float* dw,
                       float* db) {
    cuda::bridge_kernels::linear_backward(x, dy, n, in, w, out, dx, dw, db, st);
  }
  /// y += scale · u over `count` values.
  void add(float* y, const float* u, float scale, std::int64_t count) {
    cuda::bridge_kernels::add(y, u, scale, count, st);
  }
  void gate_residual(const float* x, const float* z, const float* gate, std::int64_t count, float* y) {
    cuda::bridge_kernels::gate_residual(x, z, gate, count, y, st);
  }
  void gate_residual_backward(const float* dy, const float* z, const float* gate, std::int64_t count, float* dx,
                              float* dz, float* dgate) {
    cuda::bridge_kernels::gate_residual_backward(dy, z, gate, count, dx, dz, dgate, st);
  }

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

 private:
  void run_forward(float* y) {
    Kind::device_forward(*this, y);
    if constexpr (Kind::per_row && !Kind::uses_context)
      if (d_.skip) linear(at("x"), n_, int(d_.d_in), v("skip.weight"), v("skip.bias"), int(d_.d_out), y, true);
  }
  void run_backward(const float* dy, float* dx, float* dc) {
    Kind::device_backward(*this, dy, dx, dc);
    if constexpr (Kind::per_row && !Kind::uses_context)
      if (d_.skip)
        linear_backward(at("x"), dy, n_, int(d_.d_in), v("skip.weight"), int(d_.d_out), dx, g("skip.weight"),
                        g("skip.bias"));
    cuda::check(cudaStreamSynchronize(st), "bridge backward");
  }

  bridge_dims d_;
  arrays values_, grads_, tape_;
  int n_ = 0, m_ = 0;
};

}  // namespace nexus::fusion
