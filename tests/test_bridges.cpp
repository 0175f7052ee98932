// Bridges (nexus/fusion/bridges/bridge.hpp): every kind's backward (inputs, context and parameters) against fp64
// central finite differences; forward shapes; the start at a closed-form map; save -> load identical and
// typed errors for bad files; the residual hook, and a zero-initialised gated adapter between two blocks
// of a host teacher leaving its logits bit-identical.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bridges/bridge.hpp"
#include "reference.hpp"

using namespace nexus;
using namespace nexus::fusion;
namespace fs = std::filesystem;

namespace {

std::vector<double> random_values(std::size_t n, std::uint64_t seed, double a = 1.0) {
  bridge_rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = rng.uniform(a);
  return v;
}

/// The loss Σ y · r of the bridge's output.
template <class B>
double loss(const B& b, const std::vector<double>& x, const std::vector<double>& c, const std::vector<double>& r) {
  const auto y = b.apply(x, c);
  double s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * r[i];
  return s;
}

struct check_result {
  double max_error = 0;  // max |analytic - numeric| / max(1, |numeric|)
  std::size_t checked = 0;
};

/// Every input, context and trainable parameter element of a kind: its gradient against a central finite
/// difference of the loss, in fp64. Parameters initialised to zero (gates, last layers) are randomised
/// first, so that no path is switched off.
template <class Kind>
check_result gradient_check(const bridge_dims& d, std::int64_t n, std::int64_t m) {
  bridge<Kind, double> b(d, 11);
  std::uint64_t seed = 100;
  for (auto& p : b.parameters())
    if (!p.frozen) p.value = random_values(p.value.size(), seed++, 0.7);
  auto x = random_values(std::size_t(n * d.d_in), 1), c = random_values(std::size_t(m * d.d_context), 2);
  const auto r = random_values(std::size_t(b.output_rows(n) * d.d_out), 3);
  b.zero_grad();
  b.forward(x, c);
  std::vector<double> dc;
  const auto dx = b.backward(r, Kind::uses_context ? &dc : nullptr);
  check_result out;
  const double h = 1e-5;
  const auto compare = [&](double analytic, double& v) {
    const double keep = v;
    v = keep + h;
    const double up = loss(b, x, c, r);
    v = keep - h;
    const double down = loss(b, x, c, r);
    v = keep;
    const double numeric = (up - down) / (2 * h);
    out.max_error = std::max(out.max_error, std::abs(analytic - numeric) / std::max(1.0, std::abs(numeric)));
    ++out.checked;
  };
  for (std::size_t i = 0; i < x.size(); ++i) compare(dx[i], x[i]);
  if constexpr (Kind::uses_context)
    for (std::size_t i = 0; i < c.size(); ++i) compare(dc[i], c[i]);
  for (auto& p : b.parameters()) {
    if (p.frozen) {
      for (const auto g : p.grad) CHECK(g == 0.0);
      continue;
    }
    for (std::size_t i = 0; i < p.value.size(); ++i) compare(p.grad[i], p.value[i]);
  }
  return out;
}

bridge_dims dims_of(std::string_view kind) {
  if (kind == "linear") return {.d_in = 5, .d_out = 4};
  if (kind == "mlp") return {.d_in = 5, .d_out = 4, .hidden = 6};
  if (kind == "attention_pool") return {.d_in = 5, .d_out = 4, .hidden = 6, .heads = 2, .queries = 3};
  if (kind == "perceiver") return {.d_in = 5, .d_out = 4, .hidden = 4, .heads = 2, .queries = 3, .depth = 2};
  if (kind == "gated_adapter") return {.d_in = 6, .d_out = 6, .hidden = 4, .heads = 2, .d_context = 3};
  return {.d_in = 5, .d_out = 4, .rank = 2, .alpha = 4};
}

fs::path temp_file(const std::string& name) {
  const auto dir = fs::temp_directory_path() / "nexus_test_bridges";
  fs::create_directories(dir);
  return dir / name;
}

}  // namespace

TEMPLATE_TEST_CASE("bridge backward matches fp64 finite differences", "[bridges]", linear_kind, mlp_kind,
                   attention_pool_kind, perceiver_kind, gated_adapter_kind, lora_kind) {
  auto d = dims_of(TestType::name);
  const auto r = gradient_check<TestType>(d, 4, 3);
  INFO(TestType::name << ": " << r.checked << " gradients, max relative error " << r.max_error);
  CHECK(r.checked > 20);
  CHECK(r.max_error < 1e-8);
  if constexpr (TestType::per_row && !TestType::uses_context) {  // with the skip path
    d.skip = true;
    const auto s = gradient_check<TestType>(d, 4, 0);
    INFO("with skip: " << s.checked << " gradients, max relative error " << s.max_error);
    CHECK(s.max_error < 1e-8);
  }
}

TEST_CASE("a wrong gradient fails the check", "[bridges]") {
  // The check can fail: a bridge whose backward is off by a factor in one parameter is caught.
  bridge<mlp_kind, double> b(dims_of("mlp"), 1);
  const auto x = random_values(10, 1), r = random_values(8, 3);
  b.forward(x);
  b.backward(r);
  const double g = b.parameters().at("fc1.bias").grad[0];
  auto& v = b.parameters().at("fc1.bias").value[0];
  const double keep = v;
  v = keep + 1e-5;
  const double up = loss(b, x, {}, r);
  v = keep - 1e-5;
  const double down = loss(b, x, {}, r);
  v = keep;
  CHECK(std::abs(g - (up - down) / 2e-5) < 1e-8);
  CHECK(std::abs(1.01 * g - (up - down) / 2e-5) > 1e-8);
}

TEST_CASE("bridge forward shapes", "[bridges]") {
  const auto x = std::vector<float>(7 * 5, 0.5f), c = std::vector<float>(3 * 3, 0.25f);
  CHECK(bridge<linear_kind>(dims_of("linear")).apply(x).size() == 7 * 4);
  CHECK(bridge<mlp_kind>(dims_of("mlp")).apply(x).size() == 7 * 4);
  CHECK(bridge<lora_kind>(dims_of("lora")).apply(x).size() == 7 * 4);
  CHECK(bridge<attention_pool_kind>(dims_of("attention_pool")).apply(x).size() == 3 * 4);  // n -> k rows
  CHECK(bridge<perceiver_kind>(dims_of("perceiver")).apply(x).size() == 3 * 4);
  const auto xa = std::vector<float>(7 * 6, 0.5f);
  CHECK(bridge<gated_adapter_kind>(dims_of("gated_adapter")).apply(xa, c).size() == 7 * 6);
  // Rows of the wrong width, a missing context, impossible dims: usage errors naming what.
  CHECK_THROWS_AS(bridge<linear_kind>(dims_of("linear")).apply(std::vector<float>(7, 1.0f)), usage_error);
  CHECK_THROWS_AS(bridge<gated_adapter_kind>(dims_of("gated_adapter")).apply(xa), usage_error);
  CHECK_THROWS_WITH(bridge<attention_pool_kind>({.d_in = 5, .d_out = 4, .hidden = 6, .heads = 4, .queries = 3}),
                    Catch::Contains("bridge_dims.heads"));
  CHECK_THROWS_AS(bridge<perceiver_kind>({.d_in = 5, .d_out = 4, .hidden = 4, .heads = 2, .queries = 3, .skip = true}),
                  usage_error);
}

TEST_CASE("zero-initialised parts: LoRA starts at its frozen base, the adapter at the identity", "[bridges]") {
  const auto x = random_values(7 * 5, 9);
  bridge<lora_kind, double> lora(dims_of("lora"), 3);
  std::vector<double> y(7 * 4);
  const auto& p = lora.parameters();
  bridge_ops::linear(x.data(), 7, 5, p.v("base.weight"), p.v("base.bias"), 4, y.data());
  CHECK(lora.apply(x) == y);
  bridge<gated_adapter_kind> adapter(dims_of("gated_adapter"), 3);
  const auto xa = std::vector<float>(7 * 6, 0.5f), c = std::vector<float>(3 * 3, 0.25f);
  CHECK(adapter.apply(xa, c) == xa);
}

TEST_CASE("a bridge with a skip path starts exactly at the closed-form map", "[bridges]") {
  bridge_dims d = dims_of("mlp");
  d.skip = true;
  bridge<mlp_kind> b(d, 5);
  const auto W = random_values(4 * 5, 21), bias = random_values(4, 22);
  b.start_at(W, bias);
  std::vector<float> wf(W.begin(), W.end()), bf(bias.begin(), bias.end());
  std::vector<float> x(6 * 5);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(double(i)));
  std::vector<float> want(6 * 4);
  bridge_ops::linear(x.data(), 6, 5, wf.data(), bf.data(), 4, want.data());
  CHECK(b.apply(x) == want);  // the body adds exact zeros
  // ... and moves away once its last layer is trained (a gradient reaches it).
  b.forward(x);
  b.backward(std::vector<float>(6 * 4, 1.0f));
  double g = 0;
  for (const auto v : b.parameters().at("fc2.weight").grad) g += std::abs(v);
  CHECK(g > 0);
  // A body without a skip path cannot start at a map.
  bridge<mlp_kind> plain(dims_of("mlp"));
  CHECK_THROWS_AS(plain.start_at(W, bias), usage_error);
  struct map {  // the shape of fusion::affine_map
    std::int64_t d_in = 5, d_out = 4;
    std::vector<double> w, b;
  };
  bridge<linear_kind> lin(dims_of("linear"));
  lin.start_at(map{5, 4, W, bias});
  CHECK(lin.apply(x) == want);
  CHECK_THROWS_AS(lin.start_at(map{4, 5, W, bias}), usage_error);
}

TEST_CASE("bridge save -> load gives the same bridge; bad files are typed errors", "[bridges]") {
  const auto x = random_values(6 * 5, 4);
  const std::vector<float> xf(x.begin(), x.end());
  const auto path = temp_file("perceiver.safetensors");
  bridge<perceiver_kind> b(dims_of("perceiver"), 17);
  b.save(path);
  const auto h = read_bridge_header(path);
  CHECK(h.kind == "perceiver");
  CHECK(h.dims == b.dims());
  const auto l = bridge<perceiver_kind>::load(path);
  REQUIRE(l.parameters().size() == b.parameters().size());
  for (std::size_t i = 0; i < b.parameters().size(); ++i) {
    const auto& p = *(b.parameters().begin() + std::ptrdiff_t(i));
    const auto& q = *(l.parameters().begin() + std::ptrdiff_t(i));
    CHECK(p.name == q.name);
    CHECK(p.shape == q.shape);
    CHECK(p.value == q.value);
  }
  CHECK(l.apply(xf) == b.apply(xf));
  for (const auto* kind : {"linear", "mlp", "attention_pool", "gated_adapter", "lora"})
    with_bridge_kind(kind, [&](auto k) {
      using K = decltype(k);
      bridge<K> one(dims_of(K::name), 2);
      const auto p = temp_file(std::string(K::name) + ".safetensors");
      one.save(p);
      const auto back = bridge<K>::load(p);
      for (std::size_t i = 0; i < one.parameters().size(); ++i)
        CHECK((one.parameters().begin() + std::ptrdiff_t(i))->value ==
              (back.parameters().begin() + std::ptrdiff_t(i))->value);
    });

  using c = bridge_error::code;
  const auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const bridge_error& e) {
      return e.get_code();
    }
    FAIL("no bridge_error");
    return c::not_a_bridge;
  };
  CHECK(code_of([&] { bridge<mlp_kind>::load(path); }) == c::kind_mismatch);
  CHECK_THROWS_WITH(bridge<mlp_kind>::load(path), Catch::Contains("a perceiver bridge, not mlp"));
  // Tensors written by hand around the saved ones.
  const safetensors_file f(path.string());
  auto write = [&](const std::string& name, std::map<std::string, std::string> meta, std::string drop,
                   std::string extra, bool reshape) {
    std::vector<tensor_to_write> ts;
    std::vector<std::int64_t> shape_of_first;
    for (const auto& n : f.names()) {
      if (n == drop) continue;
      const auto t = f.tensor(n);
      ts.push_back({n, t.type, t.shape, t.data});
      if (reshape && n == "latents") ts.back().shape = {t.shape[1], t.shape[0]};
    }
    static const float one = 1;
    if (!extra.empty()) ts.push_back({extra, dtype::f32, {1}, std::as_bytes(std::span(&one, 1))});
    const auto p = temp_file(name);
    write_safetensors(p.string(), ts, meta);
    return p;
  };
  auto meta = f.metadata();
  CHECK(code_of([&] { bridge<perceiver_kind>::load(write("a", meta, "out.bias", "", false)); }) == c::tensor_missing);
  CHECK_THROWS_WITH(bridge<perceiver_kind>::load(write("b", meta, "", "", true)), Catch::Contains("latents"));
  CHECK(code_of([&] { bridge<perceiver_kind>::load(write("c", meta, "", "extra", false)); }) == c::tensor_unexpected);
  auto other = meta;
  other["format"] = "something";
  CHECK(code_of([&] { bridge<perceiver_kind>::load(write("d", other, "", "", false)); }) == c::not_a_bridge);
  other = meta, other["version"] = "2";
  CHECK(code_of([&] { bridge<perceiver_kind>::load(write("e", other, "", "", false)); }) == c::bad_version);
  other = meta, other["traits"] = "{\"kind\": \"perceiver\"}";
  CHECK_THROWS_WITH(bridge<perceiver_kind>::load(write("f", other, "", "", false)), Catch::Contains("traits.d_in"));
  other = meta;
  auto traits = nlohmann::json::parse(meta["traits"]);
  traits["heads"] = 3;  // does not divide hidden
  other["traits"] = traits.dump();
  CHECK(code_of([&] { bridge<perceiver_kind>::load(write("g", other, "", "", false)); }) == c::traits_invalid);
  traits = nlohmann::json::parse(meta["traits"]);
  traits["hidden"] = 1 << 24;  // would allocate far more than the file holds: refused before allocating
  traits["d_in"] = 1 << 24;
  other["traits"] = traits.dump();
  CHECK_THROWS_WITH(bridge<perceiver_kind>::load(write("h", other, "", "", false)),
                    Catch::Contains("more than the file holds"));
  traits["depth"] = 1u << 31;
  other["traits"] = traits.dump();
  CHECK_THROWS_WITH(bridge<perceiver_kind>::load(write("i", other, "", "", false)), Catch::Contains("traits.depth"));
  {
    std::ofstream junk(temp_file("junk.safetensors"), std::ios::binary);
    junk << "not a file";
  }
  CHECK(code_of([&] { bridge<perceiver_kind>::load(temp_file("junk.safetensors")); }) == c::not_a_bridge);
}

TEST_CASE("the residual hook rewrites the stream after its layer; a zero gated adapter is the identity") {
  const auto m = load_cpu_model(test::data_dir() / "models" / "llama");
  const auto H = m->arch().dims.hidden_size, L = m->arch().dims.num_layers;
  REQUIRE(L >= 2);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(std::int32_t((i * 37 + 11) % m->arch().dims.vocab_size));
  const auto run = [&](forward_options o) {
    auto c = m->new_cache(20);
    o.hidden_states = true;
    o.chunk_rows = 7;
    return m->forward(ids, c, o);
  };
  const auto plain = run({});

  // A hook that leaves the rows alone changes nothing; one that scales them changes the later layers only.
  int calls = 0;
  const auto noop = run({.hook = {0, [&](std::int64_t layer, float*, std::int64_t n, std::int64_t h) {
                                    CHECK(layer == 0);
                                    CHECK(h == H);
                                    CHECK(n <= 7);
                                    ++calls;
                                  }}});
  CHECK(calls == 3);  // one per step of 7 rows
  CHECK(noop.logits.data == plain.logits.data);
  const auto scaled = run({.hook = {-L, [](std::int64_t, float* rows, std::int64_t n, std::int64_t h) {
                                      for (std::int64_t i = 0; i < n * h; ++i) rows[i] *= 2;
                                    }}});
  CHECK(scaled.hidden[1].data != plain.hidden[1].data);  // the snapshot shows the rewritten rows
  CHECK(scaled.hidden[0].data == plain.hidden[0].data);
  CHECK(scaled.logits.data != plain.logits.data);
  CHECK_THROWS_AS(run({.hook = {L, [](std::int64_t, float*, std::int64_t, std::int64_t) {}}}), usage_error);

  // A zero-initialised tanh-gated cross-attention adapter between blocks 0 and 1: bit-identical logits.
  bridge<gated_adapter_kind> adapter({.d_in = H, .d_out = H, .hidden = 32, .heads = 4, .d_context = 24}, 7);
  std::vector<float> context(5 * 24);
  for (std::size_t i = 0; i < context.size(); ++i) context[i] = float(std::cos(0.37 * double(i)));
  const auto with = run({.hook = adapter_hook(adapter, context, 0)});
  REQUIRE(with.logits.data.size() == plain.logits.data.size());
  CHECK(std::memcmp(with.logits.data.data(), plain.logits.data.data(), plain.logits.data.size() * 4) == 0);
  // The same adapter with its gate opened does change them (the test can fail).
  adapter.parameters().at("gate").value[0] = 0.5f;
  const auto open = run({.hook = adapter_hook(adapter, context, 0)});
  CHECK(open.logits.data != plain.logits.data);
}
