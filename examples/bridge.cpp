// Bridges (nexus/fusion/bridges/bridge.hpp): an MLP bridge that starts exactly at an affine map (as a closed-form
// fit would give it) and is trained a few steps on pairs that map isn't exact for, saved and read back;
// then a zero-initialised gated cross-attention adapter inserted between the first two blocks of a
// host teacher, which leaves its logits bit-identical until its gate opens.
//   ./build/examples/bridge tests/data/models/llama /tmp/mlp.bridge.safetensors
#include <cmath>
#include <cstdio>
#include <cstring>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bridges/bridge.hpp"

using namespace nexus;
using namespace nexus::fusion;

int main(int argc, char** argv) try {
  if (argc != 3) {
    std::fprintf(stderr, "usage: bridge MODEL OUT.safetensors\n");
    return 2;
  }
  // Pairs x -> y = A x + 0.3 · sin(x) from 8 to 6 dimensions, and the best affine map we pretend a
  // closed-form fit returned (here just A, without the bias and the sine).
  const std::int64_t d_in = 8, d_out = 6, n = 64;
  bridge_rng rng(1);
  std::vector<double> A(std::size_t(d_out * d_in)), b(std::size_t(d_out), 0.0);
  for (auto& v : A) v = rng.uniform(1.0);
  std::vector<float> x(std::size_t(n * d_in)), y(std::size_t(n * d_out));
  for (auto& v : x) v = float(rng.uniform(2.0));
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t o = 0; o < d_out; ++o) {
      double s = 0.3 * std::sin(double(x[std::size_t(r * d_in + o)]));
      for (std::int64_t i = 0; i < d_in; ++i) s += A[std::size_t(o * d_in + i)] * x[std::size_t(r * d_in + i)];
      y[std::size_t(r * d_out + o)] = float(s);
    }

  // An MLP bridge with a skip path: the skip starts at the map, the MLP's last layer at zero.
  bridge<mlp_kind> mlp({.d_in = d_in, .d_out = d_out, .hidden = 32, .skip = true}, 7);
  mlp.start_at(A, b);
  const auto mse = [&](const std::vector<float>& got) {
    double s = 0;
    for (std::size_t i = 0; i < got.size(); ++i) s += (got[i] - y[i]) * (got[i] - y[i]);
    return s / double(got.size());
  };
  std::printf("mlp bridge at the affine map: mse %.5f\n", mse(mlp.apply(x)));
  for (int step = 1; step <= 200; ++step) {  // plain gradient descent on the mean squared error
    mlp.zero_grad();
    const auto out = mlp.forward(x);
    std::vector<float> dy(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) dy[i] = 2 * (out[i] - y[i]) / float(out.size());
    mlp.backward(dy);
    for (auto& p : mlp.parameters())
      if (!p.frozen)
        for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.05f * p.grad[i];
    if (step % 50 == 0) std::printf("  step %3d: mse %.5f\n", step, mse(mlp.apply(x)));
  }
  mlp.save(argv[2]);
  const auto back = bridge<mlp_kind>::load(argv[2]);
  std::printf("saved to %s and read back: %s\n", argv[2], back.apply(x) == mlp.apply(x) ? "same outputs" : "DIFFERENT");

  // A gated cross-attention adapter between blocks 0 and 1 of a host teacher, reading 5 context rows.
  const auto model = load_cpu_model(argv[1]);
  const auto H = model->arch().dims.hidden_size;
  bridge<gated_adapter_kind> adapter({.d_in = H, .d_out = H, .hidden = 32, .heads = 4, .d_context = 16}, 3);
  std::vector<float> context(5 * 16);
  for (auto& v : context) v = float(rng.uniform(1.0));
  const std::vector<std::int32_t> ids{1, 5, 9, 14, 20};
  const auto logits = [&](const forward_options& o) {
    auto cache = model->new_cache(std::int64_t(ids.size()));
    return model->forward(ids, cache, o).logits.data;
  };
  const auto plain = logits({});
  const auto closed = logits({.hook = adapter_hook(adapter, context, 0)});
  std::printf("host with a closed adapter: logits %s\n",
              std::memcmp(plain.data(), closed.data(), plain.size() * 4) == 0 ? "bit-identical" : "DIFFERENT");
  adapter.parameters().at("gate").value[0] = 0.5f;
  const auto open = logits({.hook = adapter_hook(adapter, context, 0)});
  double diff = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) diff = std::max(diff, double(std::abs(open[i] - plain[i])));
  std::printf("gate opened to tanh(0.5): logits move by up to %.4f\n", diff);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bridge: %s\n", e.what());
  return 1;
}
