// Host tests of the element-wise math shared with the CUDA kernels, against the defining
// formulas evaluated in double precision.
#include <catch2/catch.hpp>

#include <cmath>

#include "nexus/math/elementwise.hpp"

using namespace nexus;

TEST_CASE("activations equal their definitions") {
  for (double x = -8.0; x <= 8.0; x += 0.125) {
    INFO("x = " << x);
    CHECK(math::silu(float(x)) == Approx(x / (1 + std::exp(-x))).margin(1e-6).epsilon(1e-6));
    CHECK(math::gelu_erf(float(x)) == Approx(0.5 * x * (1 + std::erf(x / std::sqrt(2.0)))).margin(1e-6).epsilon(1e-6));
    const double t = std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x));
    CHECK(math::gelu_tanh(float(x)) == Approx(0.5 * x * (1 + t)).margin(1e-6).epsilon(1e-6));
    CHECK(math::relu(float(x)) == (x > 0 ? float(x) : 0.0f));
    CHECK(math::activate<activation::silu>(float(x)) == math::silu(float(x)));
  }
}

TEST_CASE("softcap bounds values by the cap and is odd") {
  CHECK(math::softcap(1000.0f, 30.0f) == Approx(30.0f));
  CHECK(math::softcap(-1000.0f, 30.0f) == Approx(-30.0f));
  CHECK(math::softcap(3.0f, 50.0f) == Approx(std::tanh(3.0 / 50.0) * 50.0).epsilon(1e-6));
  CHECK(math::softcap(-2.5f, 30.0f) == -math::softcap(2.5f, 30.0f));
}

TEST_CASE("rotate turns a pair by the angle and keeps its length") {
  for (double angle = -3.0; angle <= 3.0; angle += 0.25) {
    float a = 0.6f, b = -1.3f;
    math::rotate(a, b, float(std::cos(angle)), float(std::sin(angle)));
    CHECK(a == Approx(0.6 * std::cos(angle) + 1.3 * std::sin(angle)).margin(1e-6));
    CHECK(b == Approx(-1.3 * std::cos(angle) + 0.6 * std::sin(angle)).margin(1e-6));
    CHECK(std::hypot(a, b) == Approx(std::hypot(0.6, 1.3)).epsilon(1e-6));
  }
}
