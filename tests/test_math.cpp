// Host tests of the element-wise math shared with the CUDA kernels, against the defining
// formulas evaluated in double precision.
#include <catch2/catch.hpp>

#include <cmath>

#include "nexus/math/elementwise.hpp"
#include "nexus/math/norm.hpp"
#include "nexus/reflect/reflect.hpp"

using namespace nexus;

TEST_CASE("activations equal their definitions") {
  for (double x = -8.0; x <= 8.0; x += 0.125) {
    INFO("x = " << x);
    CHECK(math::silu(float(x)) == Approx(x / (1 + std::exp(-x))).margin(1e-6).epsilon(1e-6));
    CHECK(math::gelu(float(x)) == Approx(0.5 * x * (1 + std::erf(x / std::sqrt(2.0)))).margin(1e-6).epsilon(1e-6));
    const double t = std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x));
    CHECK(math::gelu_tanh(float(x)) == Approx(0.5 * x * (1 + t)).margin(1e-6).epsilon(1e-6));
    CHECK(math::relu(float(x)) == (x > 0 ? float(x) : 0.0f));
    CHECK(math::activate<activation::silu>(float(x)) == math::silu(float(x)));
    CHECK(math::activate<activation::gelu>(float(x)) == math::gelu(float(x)));
    CHECK(math::activate<activation::gelu_tanh>(float(x)) == math::gelu_tanh(float(x)));
    CHECK(math::activate<activation::relu>(float(x)) == math::relu(float(x)));
  }
  // Every value of the list: names and transformers spellings come from the same line.
  CHECK(enum_size<activation> == 4);
  CHECK(reflect::to_string(activation::gelu_tanh) == "gelu_tanh");
  for (std::size_t i = 0; i < enum_size<activation>; ++i) CHECK(activation_names_table[i].act == activation(i));
}

TEST_CASE("visit_enum reaches every value as a compile-time constant and rejects others") {
  for (std::size_t i = 0; i < enum_size<norm_kind>; ++i)
    CHECK(visit_enum(norm_kind(i), [](auto k) { return std::size_t(decltype(k)::value); }) == i);
  CHECK_THROWS_AS(visit_enum(norm_kind(200), [](auto) { return 0; }), usage_error);
}

TEST_CASE("normalize_row: rms and layer norm against their definitions, split rows equal whole rows") {
  const std::vector<float> x{0.5f, -1.25f, 2.0f, 3.5f, -0.75f, 1.0f};
  const std::vector<float> w{1.5f, 0.5f, -1.0f, 2.0f, 1.0f, 0.25f}, b{0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.5f};
  const double n = double(x.size());
  double mean = 0, sq = 0;
  for (float v : x) mean += v, sq += double(v) * v;
  mean /= n;
  double var = 0;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= n;
  const float eps = 1e-5f;
  auto rms = x, layer = x, gemma = x, bare = x;
  math::normalize_row<norm_kind::rms>(rms.data(), 6, {w.data(), nullptr, eps, false});
  math::normalize_row<norm_kind::layer>(layer.data(), 6, {w.data(), b.data(), eps, false});
  math::normalize_row<norm_kind::rms>(gemma.data(), 6, {w.data(), nullptr, eps, true});
  math::normalize_row<norm_kind::layer_no_affine>(bare.data(), 6, {nullptr, nullptr, eps, false});
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO("i = " << i);
    CHECK(rms[i] == Approx(x[i] / std::sqrt(sq / n + eps) * w[i]).epsilon(1e-6));
    CHECK(gemma[i] == Approx(x[i] / std::sqrt(sq / n + eps) * (1 + w[i])).epsilon(1e-6));
    CHECK(layer[i] == Approx((x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i]).epsilon(1e-6).margin(1e-6));
    CHECK(bare[i] == Approx((x[i] - mean) / std::sqrt(var + eps)).epsilon(1e-6).margin(1e-6));
  }
  // Three "threads" each holding two elements (t and t + 3: step 3, stride 3), with a reduction
  // that returns the row's sum as a block reduction would: the kernels' way of calling it.
  auto split = x;
  for (int t = 0; t < 3; ++t) {
    int calls = 0;
    auto row_sum = [&](float) {
      float s = 0;
      const float m = calls++ == 0 ? 0.0f : float(mean);  // first the values, then the squared deviations
      for (float v : x) s += calls == 1 ? v : (v - m) * (v - m);
      return s;
    };
    math::normalize_row<norm_kind::layer>(split.data() + t, 2, 3, t, 3, 6, {w.data(), b.data(), eps, false}, row_sum);
  }
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(split[i] == Approx(layer[i]).epsilon(1e-5).margin(1e-6));
}

TEST_CASE("softcap bounds values by the cap and is odd") {
  CHECK(math::softcap(1000.0f, 30.0f) == Approx(30.0f));
  CHECK(math::softcap(-1000.0f, 30.0f) == Approx(-30.0f));
  CHECK(math::softcap(3.0f, 50.0f) == Approx(std::tanh(3.0 / 50.0) * 50.0).epsilon(1e-6));
  CHECK(math::softcap(-2.5f, 30.0f) == -math::softcap(2.5f, 30.0f));
  CHECK(math::softcap(123.0f, 0.0f) == 123.0f);  // 0: no cap
  CHECK(math::finish_logit(2.0f, 0.5f, 0.0f) == 1.0f);
  CHECK(math::finish_logit(2.0f, 0.5f, 30.0f) == Approx(std::tanh(1.0 / 30.0) * 30.0).epsilon(1e-6));
}

TEST_CASE("rotate turns a pair by the angle and keeps its length") {
  for (double angle = -3.0; angle <= 3.0; angle += 0.25) {
    float a = 0.6f, b = -1.3f;
    math::rotate(a, b, float(std::cos(angle)), float(std::sin(angle)));
    CHECK(a == Approx(0.6 * std::cos(angle) + 1.3 * std::sin(angle)).margin(1e-6));
    CHECK(b == Approx(-1.3 * std::cos(angle) + 0.6 * std::sin(angle)).margin(1e-6));
    CHECK(std::hypot(a, b) == Approx(std::hypot(0.6, 1.3)).epsilon(1e-6));
  }
  // Pair j of a head of 8 with 4 rotated pairs... neox pairs (j, j + half), interleaved (2j, 2j + 1).
  float neox[8] = {0, 1, 2, 3, 4, 5, 6, 7}, inter[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  math::rotate_pair<rope_style::neox>(neox, 1, 4, 0.0f, 1.0f);          // a quarter turn of (1, 5)
  math::rotate_pair<rope_style::interleaved>(inter, 1, 4, 0.0f, 1.0f);  // a quarter turn of (2, 3)
  CHECK(neox[1] == -5.0f);
  CHECK(neox[5] == 1.0f);
  CHECK(inter[2] == -3.0f);
  CHECK(inter[3] == 2.0f);
}
