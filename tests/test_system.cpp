// A fused system of teachers with different tokenizers: its mixtures are distributions, a mixture fitted
// on a text is never worse on it than the best teacher alone, weights survive the bundle, generation
// streams valid UTF-8 and respects the budget; the cascade spans the first teacher alone to the mixture,
// escalating the share it was fitted for; the router recovers a linear rule and survives the bundle.
#include <catch2/catch.hpp>
#include <filesystem>
#include <cmath>
#include <limits>
#include <numeric>

#include "reference.hpp"
#include "nexus/fusion/system/system.hpp"

namespace fs = std::filesystem;
using nexus::test::temp_dir;
using namespace nexus::fusion;

namespace {

/// A bundle of the llama (SentencePiece-style vocabulary) and gpt2 (byte-level BPE) fixtures.
fs::path two_teacher_bundle(const temp_dir& d, std::uint64_t budget = 0) {
  bundle_manifest m;
  m.budget_bytes = budget;
  for (const char* name : {"llama", "gpt2"}) {
    const auto dir = fs::path(NEXUS_TEST_DATA) / "models" / name;
    const auto dg = digest_teacher(dir);
    m.teachers.push_back({name, name, dg.sha256, dg.bytes, {teacher_source::kind::path, dir.string()}});
  }
  const auto p = d.path / "two.nexus";
  write_bundle(p, m, {});
  return p;
}

// ASCII: the fixtures' tokenizers are cut to their models' 256 ids, which leave out some bytes.
const std::string text = "The quick brown fox, 12 times: naive cafe - ok.\nNext line.";

/// Development text for the cascade tests, and the two-teacher system with a linear mixture, its
/// cascade and router fitted on it.
const std::string cascade_dev = text + " " + text.substr(0, 30);
fused_system fitted_two_teachers(const temp_dir& d) {
  auto sys = load_bundle(two_teacher_bundle(d));
  sys.fit(std::vector<dev_example>{{"", cascade_dev}}, {.kind = mixture_kind::linear, .cascade_share = 0.5});
  return sys;
}

}  // namespace

TEST_CASE("system: mixtures are distributions; a fitted mixture is at least as good as the best teacher", "[system]") {
  temp_dir d;
  auto sys = load_bundle(two_teacher_bundle(d));
  REQUIRE(sys.teachers().size() == 2);
  const auto even = sys.score(text);
  REQUIRE(even.teachers.size() == 2);
  const double best = std::min(even.teachers[0].bits_per_byte, even.teachers[1].bits_per_byte);
  for (const auto kind : {mixture_kind::linear, mixture_kind::log_linear, mixture_kind::fixed_share}) {
    const auto f = sys.fit(std::vector<dev_example>{{"", text}}, {.kind = kind}).mixture;
    CHECK(sys.weights() == f.weights);
    const auto s = sys.score(text);
    INFO(name_of(kind));
    // Both static families contain each teacher alone (a weight vector with one 1), so their optimum on
    // the text can only be better; fixed share is within log(1/w) of the best teacher (and scored as fitted).
    if (kind != mixture_kind::fixed_share) CHECK(s.bits_per_byte <= best + 1e-9);
    CHECK(s.bits_per_byte == Approx(-f.log_likelihood / (std::log(2.0) * double(text.size()))).epsilon(1e-9));
  }
  // Every mixed distribution sums to 1.
  const auto all = sys.distributions(text.substr(0, 20));
  for (const auto kind : mixture_kinds) {
    sys.set_mixture(kind, kind == mixture_kind::entropy_gate  ? std::vector<double>{0.5}
                          : kind == mixture_kind::fixed_share ? std::vector<double>{0.3, 0.7, 0.1}
                                                              : std::vector<double>{0.3, 0.7});
    for (std::size_t i = 0; i < all[0].size(); ++i) {
      const std::array<byte_distribution, 2> at = {all[0][i], all[1][i]};
      const auto p = sys.mix(at);
      CHECK(std::accumulate(p.begin(), p.end(), 0.0) == Approx(1.0).epsilon(1e-12));
    }
  }
  CHECK_THROWS_AS(sys.set_mixture(mixture_kind::linear, {1.0}), nexus::usage_error);
}

TEST_CASE("system: fitted weights are saved in the bundle and read back", "[system]") {
  temp_dir d;
  const auto p = two_teacher_bundle(d);
  save_mixture(p, mixture_kind::log_linear, std::vector<double>{0.25, 1.5});
  const auto sys = load_bundle(p);
  CHECK(sys.kind() == mixture_kind::log_linear);
  CHECK(sys.weights() == std::vector<double>{0.25, 1.5});
  CHECK(sys.manifest().teachers.size() == 2);
}

TEST_CASE("system: generation streams valid UTF-8, stops, and needs every teacher within the budget", "[system]") {
  temp_dir d;
  auto sys = load_bundle(two_teacher_bundle(d));
  std::string streamed;
  const auto out =
      sys.generate("Hello", {.max_bytes = 24, .stop = {}, .on_text = [&](std::string_view s) { streamed += s; }});
  CHECK(out.size() <= 24);
  CHECK(nexus::utf8::valid(out));
  CHECK(streamed == out);
  CHECK(sys.generate("Hello", {.max_bytes = 24}) == out);  // greedy: the same again
  if (const auto k = out.empty() ? 0 : nexus::utf8::sequence_length(static_cast<unsigned char>(out[0]));
      out.size() > k) {  // a stop string that the text reaches ends it, before the stop string
    const auto stop = out.substr(k);
    std::string shown;
    const auto stopped =
        sys.generate("Hello", {.max_bytes = 24, .stop = {stop}, .on_text = [&](std::string_view s) { shown += s; }});
    CHECK(stopped.size() <= k);
    CHECK(out.substr(0, stopped.size() + stop.size()) == stopped + stop);
    CHECK(shown == stopped);  // no piece of the stop string was streamed
  }
  auto small = load_bundle(two_teacher_bundle(d),
                           {.budget = sys.teachers().info(0).weight_bytes + sys.teachers().info(1).weight_bytes - 1});
  CHECK_THROWS_AS(small.generate("Hi", {.max_bytes = 4}), nexus::budget_error);
  CHECK_NOTHROW(small.score("Hi there"));  // scoring runs one teacher at a time
}

TEST_CASE("system: a cascade runs from the cheapest teacher alone to the mixture as its share grows", "[system]") {
  temp_dir d;
  auto sys = fitted_two_teachers(d);
  const std::string& dev = cascade_dev;
  const auto all = sys.distributions(dev);
  position_data pd;
  const auto& order = sys.cascade_order();
  REQUIRE(order.size() == 2);
  for (std::size_t i = 0; i < dev.size(); ++i) {
    pd.dists.push_back({all[order[0]][i], all[order[1]][i]});
    pd.observed.push_back(static_cast<unsigned char>(dev[i]));
  }
  const auto mixer = [&](std::span<const byte_distribution> o, std::size_t k) {
    return sys.parameters().mix_consulted(o, k);
  };
  const auto s = sys.score(dev);
  // Share 0: the first teacher alone; share 1: the mixture of both.
  const auto none = evaluate_cascade(pd, cascade_thresholds(pd, 0.0, mixer), mixer);
  CHECK(none.escalated_share == 0);
  CHECK(none.bits_per_byte == Approx(s.teachers[order[0]].bits_per_byte).epsilon(1e-12));
  const auto every = evaluate_cascade(pd, cascade_thresholds(pd, 1.0, mixer), mixer);
  CHECK(every.escalated_share == 1);
  CHECK(every.bits_per_byte == Approx(s.bits_per_byte).epsilon(1e-12));
  // In between: the share asked for, up to ties and rounding (one position).
  for (const double share : {0.25, 0.5, 0.75}) {
    const auto p = evaluate_cascade(pd, cascade_thresholds(pd, share, mixer), mixer);
    CHECK(std::abs(p.escalated_share - share) <= 1.0 / double(dev.size()) + 1e-12);
  }
  // The fitted cascade (share 0.5) is what score() reports, and it survives the bundle.
  const auto p = evaluate_cascade(pd, *sys.cascade_thresholds(), mixer);
  REQUIRE(s.cascade_bits_per_byte);
  CHECK(*s.cascade_bits_per_byte == Approx(p.bits_per_byte).epsilon(1e-12));
  const auto path = d.path / "two.nexus";
  sys.save(path);
  auto back = load_bundle(path);
  REQUIRE(back.cascade_thresholds());
  CHECK(back.cascade_order() == order);
  CHECK(*back.score(dev).cascade_bits_per_byte == Approx(p.bits_per_byte).epsilon(1e-6));  // thresholds as F32
}

TEST_CASE("system: the cascade run reads a later teacher only where it is reached, with the same result", "[system]") {
  temp_dir d;
  auto sys = fitted_two_teachers(d);
  const std::string& dev = cascade_dev;
  const auto s = sys.score(dev);
  const double to_bits = 1.0 / (std::log(2.0) * double(dev.size()));
  // The fitted cascade (about half the positions escalate): the score's cascade, with fewer tokens run.
  const auto& order = sys.cascade_order();
  const auto r = run_cascade(sys.teachers(), sys.parameters(), dev);
  REQUIRE(s.cascade_bits_per_byte);
  CHECK(r.nats * to_bits == Approx(*s.cascade_bits_per_byte).epsilon(1e-6));
  CHECK(double(r.escalated) / double(dev.size()) == Approx(*s.cascade_escalated).margin(1e-12));
  CHECK(r.teachers[order[0]].bytes_read == dev.size());
  CHECK(r.teachers[order[1]].bytes_read == r.escalated);
  CHECK(r.teachers[order[1]].bytes_decided == r.escalated);
  CHECK(r.teachers[order[0]].bytes_decided == dev.size() - r.escalated);
  byte_level_teacher alone(sys.teachers().get(order[1]), sys.teachers().tok(order[1]));
  for (const char c : dev) alone.push(static_cast<unsigned char>(c));
  CHECK(r.teachers[order[1]].forward_tokens < alone.stats().forward_tokens);
  // Confident everywhere: the second teacher never runs beyond what a fresh view runs (its root
  // context); the cascade is the first teacher alone.
  auto p = sys.parameters();
  p.thresholds = std::vector<double>{std::numeric_limits<double>::infinity()};
  const auto never = run_cascade(sys.teachers(), p, dev);
  CHECK(never.teachers[order[1]].bytes_read == 0);
  const byte_level_teacher fresh(sys.teachers().get(order[1]), sys.teachers().tok(order[1]));
  CHECK(never.teachers[order[1]].forward_tokens == fresh.stats().forward_tokens);
  CHECK(never.nats * to_bits == Approx(s.teachers[order[0]].bits_per_byte).epsilon(1e-9));
  // Never confident: every position reads both, and the cascade is the mixture of both; with the
  // mixture's weight all on the expensive teacher, exactly that teacher.
  p.thresholds = std::vector<double>{-1.0};
  const auto always = run_cascade(sys.teachers(), p, dev);
  CHECK(always.teachers[order[1]].bytes_read == dev.size());
  CHECK(always.nats * to_bits == Approx(s.bits_per_byte).epsilon(1e-6));
  p.weights.assign(2, 0.0);
  p.weights[order[1]] = 1.0;
  const auto expensive = run_cascade(sys.teachers(), p, dev);
  CHECK(expensive.nats * to_bits == Approx(s.teachers[order[1]].bits_per_byte).epsilon(1e-6));
}

TEST_CASE("system: generation through the cascade is the lazy cascade that scores", "[system]") {
  temp_dir d;
  auto sys = fitted_two_teachers(d);
  auto p = sys.parameters();
  // Never confident: every byte reads both teachers, so the cascade generates what the mixture does.
  p.thresholds = std::vector<double>{-1.0};
  const std::vector<std::size_t> both = {0, 1};
  const auto mixed = generate_bytes(sys.teachers(), p, both, false, "The quick", {.max_bytes = 12});
  const auto cascaded = generate_bytes(sys.teachers(), p, p.order, true, "The quick", {.max_bytes = 12});
  CHECK(cascaded == mixed);
  CHECK(!mixed.empty());
  // The fitted cascade generates valid UTF-8 and the same again (greedy).
  const auto once = sys.generate("The quick", {.max_bytes = 12, .mode = system_mode::cascade});
  CHECK(nexus::utf8::valid(once));
  CHECK(sys.generate("The quick", {.max_bytes = 12, .mode = system_mode::cascade}) == once);
}

TEST_CASE("system: each mode alone computes only what it needs, with the all-modes score's values", "[system]") {
  temp_dir d;
  auto sys = fitted_two_teachers(d);
  const std::string& dev = cascade_dev;
  const auto s = sys.score(dev);
  const double to_bits = 1.0 / (std::log(2.0) * double(dev.size()));
  const auto mix = sys.run(system_mode::mixture, dev);
  CHECK(mix.nats * to_bits == Approx(s.bits_per_byte).epsilon(1e-12));
  for (const auto& t : mix.teachers) CHECK(t.bytes_read == dev.size());
  // The router: a router whose bias prefers teacher 1 and whose weights are zero is constant, needs
  // no features, and runs teacher 1 alone.
  auto p = sys.parameters();
  p.router = router_model{16, affine_map::zero(4, 2)};
  p.router->map.b = {1.0, 0.5};
  REQUIRE(p.router->constant());
  const auto uses0 = sys.teachers().uses(0);
  const auto routed = run_router(sys.teachers(), p, dev);
  REQUIRE(routed.routed == std::size_t(1));
  CHECK(sys.teachers().uses(0) == uses0);  // teacher 0 never asked for
  CHECK(routed.teachers[0].bytes_read == 0);
  CHECK(routed.teachers[1].bytes_decided == dev.size());
  CHECK(routed.nats * to_bits == Approx(s.teachers[1].bits_per_byte).epsilon(1e-9));
  temp_dir other;
  CHECK_THROWS_AS(load_bundle(two_teacher_bundle(other)).run(system_mode::cascade, dev), nexus::usage_error);
  CHECK_THROWS_AS(sys.run(system_mode::mixture, ""), nexus::usage_error);
}

TEST_CASE("system: the cascade's share is chosen by cross-validation across documents", "[system]") {
  // Two teachers: the first sharp (p = 0.9 on the observed byte) at even positions and uniform at odd
  // ones; the second sharp everywhere. Escalating the uncertain half recovers the second teacher's
  // quality; less leaves uniform positions behind. The least share within tolerance is one half.
  auto dist = [](bool sharp) {
    byte_distribution d;
    d.fill(sharp ? 0.1 / 256 : 1.0 / 257);
    if (sharp) d['a'] = 0.9;
    return d;
  };
  position_data pd;
  for (int doc = 0; doc < 10; ++doc) {
    pd.starts.push_back(pd.observed.size());
    for (int i = 0; i < 40; ++i) pd.dists.push_back({dist(i % 2 == 0), dist(true)}), pd.observed.push_back('a');
  }
  const subset_mixer second_decides = [](std::span<const byte_distribution> o, std::size_t k) { return o[k - 1]; };
  const auto c = choose_cascade_share(pd, default_cascade_shares(), 0.005, second_decides);
  CHECK(c.folds == 5);
  CHECK(c.mixture_bits_per_byte == Approx(-std::log2(0.9)).epsilon(1e-12));
  REQUIRE(c.chosen < c.curve.size());
  CHECK(c.curve[c.chosen].target_share == Approx(0.5));
  CHECK(c.curve[c.chosen].escalated_share == Approx(0.5));
  CHECK(c.curve[c.chosen - 1].bits_per_byte > c.mixture_bits_per_byte * 1.005);
  // One document cannot be cross-validated.
  const auto one = pd.documents_where([](std::size_t k) { return k == 0; });
  CHECK_THROWS_AS(choose_cascade_share(one, default_cascade_shares(), 0.005, second_decides), nexus::usage_error);
}

TEST_CASE("system: a router that does not beat the best teacher held out becomes that teacher", "[system]") {
  // Losses unrelated to the features, teacher 1 always better: routing cannot win held out.
  std::vector<router_example> ex;
  std::uint32_t seed = 11;
  auto uniform = [&] { return float((seed = seed * 1664525u + 1013904223u) >> 8) / float(1u << 24); };
  for (int i = 0; i < 40; ++i) {
    std::vector<float> f(6);
    for (auto& v : f) v = uniform();
    ex.push_back({f, {2.0f + uniform(), 1.0f + uniform()}, 10});
  }
  const auto r = fit_router(ex, 16);
  CHECK(r.folds == 5);
  CHECK(r.constant);
  CHECK(r.model.constant());
  CHECK(r.model.constant_choice() == 1);
  CHECK(r.model.route(ex[0].features) == 1);
  CHECK(r.constant_loss < 2.0);
}

TEST_CASE("system: the router's ridge recovers a linear rule from features to losses", "[system]") {
  // Losses that are exact linear functions of the features: the held-out-chosen ridge must predict them.
  std::vector<router_example> ex;
  std::uint32_t seed = 7;
  auto uniform = [&] { return float((seed = seed * 1664525u + 1013904223u) >> 8) / float(1u << 24); };
  for (int i = 0; i < 200; ++i) {
    std::vector<float> f(8);
    for (auto& v : f) v = uniform();
    ex.push_back({f, {1 + 2 * f[0] - f[3], 0.5f + 3 * f[5]}});
  }
  const auto r = fit_router(ex, 32);
  CHECK(r.heldout_r2 > 0.999);
  const std::vector<float> probe = {0.1f, 0.9f, 0.2f, 0.8f, 0.3f, 0.7f, 0.4f, 0.6f};
  const auto p = r.model.predict(probe);
  CHECK(p[0] == Approx(1 + 2 * 0.1 - 0.8).margin(1e-3));
  CHECK(p[1] == Approx(0.5 + 3 * 0.7).margin(1e-3));
  CHECK(r.model.route(probe) == 0);
  CHECK_THROWS_AS(fit_router({ex.begin(), ex.begin() + 4}, 32), nexus::usage_error);
}
