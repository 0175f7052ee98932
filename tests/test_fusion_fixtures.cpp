// The fusion half against NumPy (tests/data/fusion/references.json, written by
// tools/fixtures/make_fusion_references.py from the textbook definitions): regularised CCA over the strongest
// components (what `nexus align --method cca` fits), and a bridge's forward and backward where LayerNorm's eps
// and LoRA's alpha / rank scale are visible — finite differences of our own forward cannot see a wrong
// constant that forward and backward share; an independent forward and its gradients can.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "nexus/fusion/bridges/bridge.hpp"
#include "nexus/fusion/maps/closed_form.hpp"
#include "reference.hpp"

using namespace nexus;
using namespace nexus::fusion;

namespace {

const nlohmann::json& references() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::data_dir() / "fusion" / "references.json");
    REQUIRE(in);
    return nlohmann::json::parse(in);
  }();
  return j;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "]: " << got[i] << " vs NumPy " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i])));
  }
}

/// A float64 bridge of `Kind` with the fixture's parameters, run forward and backward on its x and r.
template <class Kind>
void check_bridge(const nlohmann::json& c, const bridge_dims& d) {
  bridge<Kind, double> b(d, 1);
  std::size_t set = 0;
  for (auto& p : b.parameters()) {
    INFO(p.name);
    REQUIRE(c["params"].contains(p.name));
    p.value = c["params"][p.name].template get<std::vector<double>>();
    REQUIRE(std::int64_t(p.value.size()) == p.numel());
    ++set;
  }
  CHECK(set == c["params"].size());
  const auto x = c["x"].template get<std::vector<double>>(), r = c["r"].template get<std::vector<double>>();
  b.zero_grad();
  const auto y = b.forward(x);
  check_close(y, c["y"].template get<std::vector<double>>(), 1e-10, "y");
  const auto dx = b.backward(r);
  check_close(dx, c["dx"].template get<std::vector<double>>(), 1e-9, "dx");
  for (const auto& p : b.parameters()) {
    INFO(p.name);
    check_close(p.grad, c["grads"][p.name].template get<std::vector<double>>(), 1e-9, "grad");
  }
}

}  // namespace

TEST_CASE("NumPy: regularised CCA over the strongest components", "[fusion-ref]") {
  for (const auto& c : references()["cca"]) {
    const std::int64_t n = c["n"], dx = c["dx"], dy = c["dy"];
    INFO(dx << " -> " << dy << ", regularisation " << c["regularisation"].get<double>() << ", components "
            << c["components"].get<int>());
    const auto xd = c["x"].get<std::vector<double>>(), yd = c["y"].get<std::vector<double>>();
    const std::vector<float> x(xd.begin(), xd.end()), y(yd.begin(), yd.end());  // float32 values, exactly
    pair_statistics s(dx, dy);
    s.add(x, y, n);
    const auto fit = fit_cca(s, c["regularisation"].get<double>(), c["components"].get<std::int64_t>());
    check_close(fit.correlations, c["correlations"].get<std::vector<double>>(), 1e-9, "correlation");
    CHECK(fit.map.d_in == dx);
    CHECK(fit.map.d_out == dy);
    check_close(fit.map.w, c["w"].get<std::vector<double>>(), 1e-8, "w");
    check_close(fit.map.b, c["b"].get<std::vector<double>>(), 1e-8, "b");
  }
}

TEST_CASE("NumPy: the MLP bridge's forward and backward with LayerNorm's eps where it matters", "[fusion-ref]") {
  const auto& c = references()["mlp"];
  CHECK(c["eps"].get<double>() == bridge_norm_eps);
  for (const double v : c["pre_norm_variance"].get<std::vector<double>>()) CHECK(v < 1e-4);  // eps is visible
  check_bridge<mlp_kind>(c, {.d_in = c["dims"]["d_in"], .d_out = c["dims"]["d_out"], .hidden = c["dims"]["hidden"]});
}

TEST_CASE("NumPy: the LoRA bridge's forward and backward with its alpha / rank scale", "[fusion-ref]") {
  const auto& c = references()["lora"];
  const auto& d = c["dims"];
  check_bridge<lora_kind>(c, {.d_in = d["d_in"], .d_out = d["d_out"], .rank = d["rank"], .alpha = d["alpha"]});
}
