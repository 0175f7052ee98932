// Bridges on CUDA against the CPU reference (nexus/fusion/bridges/bridge_cuda.hpp vs bridge.hpp): outputs, input
// and context gradients and every parameter's gradient of each kind; and the residual hook on the CUDA
// model: a zero-initialised gated adapter between two blocks leaves the logits bit-identical. Part of
// nexus_cuda_tests (main in test_cuda.cpp: exits 77, skipped, without a device).
#include <catch2/catch.hpp>

#include <cstring>

#include "nexus/backend/cuda/model.hpp"
#include "nexus/fusion/bridges/bridge_cuda.hpp"
#include "nexus/model/parity.hpp"
#include "reference.hpp"

using namespace nexus;
using namespace nexus::fusion;

namespace {

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  bridge_rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.uniform(1.0));
  return v;
}

/// max |a − b| / max(1, max |b|).
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

template <class Kind>
void parity(const bridge_dims& d, int n, int m) {
  INFO(Kind::name);
  bridge<Kind> cpu(d, 3);
  std::uint64_t seed = 50;
  for (auto& p : cpu.parameters())
    if (!p.frozen) p.value = random_floats(p.value.size(), seed++);
  const auto x = random_floats(std::size_t(n * d.d_in), 1), c = random_floats(std::size_t(m * d.d_context), 2);
  const auto dy = random_floats(std::size_t(cpu.output_rows(n) * d.d_out), 3);
  cpu.zero_grad();
  const auto y_cpu = cpu.forward(x, c);
  std::vector<float> dc_cpu, dc_gpu;
  const auto dx_cpu = cpu.backward(dy, &dc_cpu);
  cuda_bridge<Kind> gpu(cpu);
  const auto y_gpu = gpu.forward(x, c);
  const auto dx_gpu = gpu.backward(dy, &dc_gpu);
  CHECK(relative_difference(y_gpu, y_cpu) < 1e-4);
  CHECK(relative_difference(dx_gpu, dx_cpu) < 1e-4);
  if (Kind::uses_context) CHECK(relative_difference(dc_gpu, dc_cpu) < 1e-4);
  bridge<Kind> grads = cpu;
  gpu.download_grads(grads);
  for (const auto& p : cpu.parameters()) {
    INFO(p.name);
    CHECK(relative_difference(grads.parameters().at(p.name).grad, p.grad) < 1e-4);
  }
}

}  // namespace

TEST_CASE("CUDA bridges match the CPU reference, forward and backward") {
  parity<linear_kind>({.d_in = 48, .d_out = 40}, 33, 0);
  parity<linear_kind>({.d_in = 48, .d_out = 40, .skip = true}, 33, 0);
  parity<mlp_kind>({.d_in = 48, .d_out = 40, .hidden = 300}, 33, 0);
  parity<mlp_kind>({.d_in = 48, .d_out = 40, .hidden = 64, .skip = true}, 5, 0);
  parity<attention_pool_kind>({.d_in = 48, .d_out = 40, .hidden = 64, .heads = 4, .queries = 8}, 70, 0);
  parity<perceiver_kind>({.d_in = 48, .d_out = 40, .hidden = 32, .heads = 2, .queries = 6, .depth = 2}, 50, 0);
  parity<gated_adapter_kind>({.d_in = 64, .d_out = 64, .hidden = 32, .heads = 4, .d_context = 24}, 20, 9);
  parity<lora_kind>({.d_in = 48, .d_out = 40, .rank = 4, .alpha = 8}, 33, 0);
}

TEST_CASE("CUDA: a zero-initialised gated adapter between two blocks leaves the logits bit-identical") {
  for (const auto p : {cuda::precision::fp32, cuda::precision::bf16}) {
    const auto m = cuda::load_model(test::data_dir() / "models" / "llama", p);
    const auto H = m->arch().dims.hidden_size;
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(std::int32_t((i * 37 + 11) % m->arch().dims.vocab_size));
    const auto run = [&](forward_options o) {
      auto c = m->new_cache(20);
      return m->forward(ids, c, o).logits.data;
    };
    const auto plain = run({});
    bridge<gated_adapter_kind> adapter({.d_in = H, .d_out = H, .hidden = 32, .heads = 4, .d_context = 24}, 7);
    std::vector<float> context(5 * 24);
    for (std::size_t i = 0; i < context.size(); ++i) context[i] = float(std::cos(0.37 * double(i)));
    const auto with = run({.hook = adapter_hook(adapter, context, 0)});
    REQUIRE(with.size() == plain.size());
    CHECK(std::memcmp(with.data(), plain.data(), plain.size() * 4) == 0);
    adapter.parameters().at("gate").value[0] = 0.5f;
    CHECK(run({.hook = adapter_hook(adapter, context, 0)}) != plain);
  }
}
