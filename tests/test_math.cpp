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

TEST_CASE("activation derivatives equal central differences of the activations, in fp64") {
  // The fp32 constants of the templated formulas are those of the float literals they replaced.
  STATIC_REQUIRE(float(0.70710678118654752) == 0.70710678118654752f);
  STATIC_REQUIRE(float(0.79788456080286536) == 0.79788456080286536f);
  STATIC_REQUIRE(float(0.044715) == 0.044715f);
  const double h = 1e-6;
  for (double x = -6.0; x <= 6.0; x += 0.0625 + 1e-3) {  // off the grid: relu's kink is not sampled
    INFO("x = " << x);
    const auto fd = [&](auto f) { return (f(x + h) - f(x - h)) / (2 * h); };
    CHECK(math::activate_grad<activation::silu>(x) == Approx(fd([](double v) { return math::silu(v); })).margin(1e-8));
    CHECK(math::activate_grad<activation::gelu>(x) == Approx(fd([](double v) { return math::gelu(v); })).margin(1e-8));
    CHECK(math::activate_grad<activation::gelu_tanh>(x) ==
          Approx(fd([](double v) { return math::gelu_tanh(v); })).margin(1e-8));
    CHECK(math::activate_grad<activation::relu>(x) == (x > 0 ? 1.0 : 0.0));
  }
}

TEST_CASE("normalize_row_backward equals central differences for every norm kind") {
  const std::vector<double> x0{0.5, -1.25, 2.0, 3.5, -0.75, 1.0}, dy{0.3, -0.7, 1.1, 0.2, -0.4, 0.9};
  const std::vector<double> w{1.5, 0.5, -1.0, 2.0, 1.0, 0.25}, b{0.1, -0.2, 0.3, 0.0, 0.5, -0.5};
  const long long n = 6;
  for (std::size_t k = 0; k < enum_size<norm_kind>; ++k)
    for (const bool unit_offset : {false, true})
      visit_enum(norm_kind(k), [&](auto kind) {
        constexpr norm_kind K = decltype(kind)::value;
        INFO(reflect::to_string(K) << (unit_offset ? " (1 + w)" : ""));
        auto wv = w, bv = b;
        const auto params = [&] {
          return math::basic_norm_params<double>{rule_of(K).weight ? wv.data() : nullptr,
                                                 rule_of(K).bias ? bv.data() : nullptr, 1e-5, unit_offset};
        };
        auto x = x0;
        const auto loss = [&] {
          auto y = x;
          math::normalize_row<K>(y.data(), n, params());
          double s = 0;
          for (long long i = 0; i < n; ++i) s += y[std::size_t(i)] * dy[std::size_t(i)];
          return s;
        };
        std::vector<double> dx(6), dw(6, 0.0), db(6, 0.0);
        math::normalize_row_backward<K>(x.data(), dy.data(), dx.data(), dw.data(), db.data(), n, params());
        const auto fd = [&](double& v) {
          const double keep = v, h = 1e-6;
          v = keep + h;
          const double up = loss();
          v = keep - h;
          const double down = loss();
          v = keep;
          return (up - down) / (2 * h);
        };
        for (std::size_t i = 0; i < 6; ++i) {
          CHECK(dx[i] == Approx(fd(x[i])).margin(1e-8));
          if (rule_of(K).weight) CHECK(dw[i] == Approx(fd(wv[i])).margin(1e-8));
          if (rule_of(K).bias) CHECK(db[i] == Approx(fd(bv[i])).margin(1e-8));
        }
      });
}
