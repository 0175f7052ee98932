// Independent references for the fusion half (issue 30): each case checks a rule of the library against
// values derived here from first principles (hand-computed mixtures and cascades, a byte histogram, a
// full sort of the logits, bit patterns of bf16 rounding, the next tokens of a text read off its own
// encoding, a teacher built so that the end of the text is its most likely outcome), never against the
// library's own helper for the rule under test. docs/testing.md lists the mutations each one catches.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bridges/bridge.hpp"
#include "nexus/fusion/bridges/stitch.hpp"
#include "nexus/fusion/features/extract.hpp"
#include "nexus/fusion/mixtures/kinds.hpp"
#include "nexus/fusion/system/cascade.hpp"
#include "nexus/fusion/system/router.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "reference.hpp"

namespace fs = std::filesystem;
using namespace nexus;
using namespace nexus::fusion;
using nexus::test::temp_dir;

namespace {

std::vector<std::span<const double>> spans(const std::vector<std::vector<double>>& v) { return {v.begin(), v.end()}; }

/// A byte distribution uniform over the outcomes in `support`.
byte_distribution uniform_over(std::initializer_list<std::size_t> support) {
  byte_distribution d{};
  for (const auto c : support) d[c] = 1.0 / double(support.size());
  return d;
}

/// A byte distribution uniform over outcomes [first, first + m).
byte_distribution uniform_run(std::size_t first, std::size_t m) {
  byte_distribution d{};
  for (std::size_t c = first; c < first + m; ++c) d[c] = 1.0 / double(m);
  return d;
}

/// The smallest float at or above x (a bundle stores thresholds as F32, rounded up).
double float_up(double x) {
  float f = float(x);
  if (double(f) < x) f = std::nextafter(f, INFINITY);
  return double(f);
}

fs::path models() { return nexus::test::data_dir() / "models"; }

fs::path bundle_of(const temp_dir& d, const std::vector<std::pair<std::string, fs::path>>& teachers,
                   const std::string& file) {
  bundle_manifest m;
  for (const auto& [name, dir] : teachers) {
    const auto dg = digest_teacher(dir);
    m.teachers.push_back({name, name, dg.sha256, dg.bytes, {teacher_source::kind::path, dir.string()}});
  }
  const auto p = d.path / file;
  write_bundle(p, m, {});
  return p;
}

}  // namespace

// ---- mixtures (mixtures/mixture.hpp) ----------------------------------------------------------

TEST_CASE("reference: three teachers mixed with explicit weights, one of them zero", "[fusion-ref]") {
  // Outcome 2 is impossible for teacher 1, whose weight is 0: it must not veto it (0 · log 0 = 0).
  const std::vector<std::vector<double>> p = {{0.5, 0.25, 0.25}, {0.6, 0.4, 0.0}, {0.1, 0.2, 0.7}};
  SECTION("linear: Σ w_t p_t") {
    std::vector<double> out(3);
    mix_linear(spans(p), std::vector<double>{0.25, 0.0, 0.75}, out);
    CHECK(out[0] == Approx(0.25 * 0.5 + 0.75 * 0.1).epsilon(1e-15));
    CHECK(out[1] == Approx(0.25 * 0.25 + 0.75 * 0.2).epsilon(1e-15));
    CHECK(out[2] == Approx(0.25 * 0.25 + 0.75 * 0.7).epsilon(1e-15));
  }
  SECTION("log-linear: Π p_t^w_t normalised; a zero weight leaves the others' product alone") {
    std::vector<double> out(3);
    mix_log_linear(spans(p), std::vector<double>{0.5, 0.0, 1.5}, out);
    std::vector<double> want(3);
    double z = 0;
    for (std::size_t b = 0; b < 3; ++b) z += (want[b] = std::pow(p[0][b], 0.5) * std::pow(p[2][b], 1.5));
    for (std::size_t b = 0; b < 3; ++b) {
      INFO("outcome " << b);
      CHECK(std::isfinite(out[b]));
      CHECK(out[b] == Approx(want[b] / z).epsilon(1e-12));
    }
    // Weight 1 on one teacher, 0 on the others: that teacher exactly, whatever the others rule out.
    mix_log_linear(spans(p), std::vector<double>{0.0, 0.0, 1.0}, out);
    for (std::size_t b = 0; b < 3; ++b) CHECK(out[b] == Approx(p[2][b]).epsilon(1e-12));
  }
  SECTION("fitting log-linear weights where a zero weight meets a zero probability stays finite") {
    // Teacher 1 rules out outcome 2, which is observed: the fit must still end finite.
    ensemble_data d{3, 3, {}, {}};
    std::vector<double> row;
    for (const auto& q : p) row.insert(row.end(), q.begin(), q.end());
    for (const int x : {0, 2, 2, 1, 2, 0}) d.add(row, x);
    const auto f = fit_log_linear(d);
    CHECK(std::isfinite(f.log_likelihood));
    for (const auto w : f.weights) CHECK(std::isfinite(w));
  }
}

TEST_CASE("reference: a 3-teacher system mixes the consulted teachers with weights renormalised over them",
          "[fusion-ref]") {
  temp_dir d;
  auto sys = load_bundle(bundle_of(
      d, {{"llama", models() / "llama"}, {"gpt2", models() / "gpt2"}, {"qwen2", models() / "qwen2"}}, "three.nexus"));
  REQUIRE(sys.teachers().size() == 3);
  const std::vector<double> w = {0.2, 0.3, 0.5};
  sys.set_mixture(mixture_kind::linear, w);
  const auto& order = sys.cascade_order();
  REQUIRE(order.size() == 3);
  const std::vector<byte_distribution> ordered = {uniform_over({'a', 'b'}), uniform_over({'b', 'c', 'd', 'e'}),
                                                  uniform_over({end_of_text})};
  // Two of three consulted: (w_o0 p_o0 + w_o1 p_o1) / (w_o0 + w_o1), a distribution.
  const double w0 = w[order[0]], w1 = w[order[1]];
  const auto two = sys.parameters().mix_consulted(ordered, 2);
  CHECK(two['a'] == Approx(w0 * 0.5 / (w0 + w1)).epsilon(1e-12));
  CHECK(two['b'] == Approx((w0 * 0.5 + w1 * 0.25) / (w0 + w1)).epsilon(1e-12));
  CHECK(two['e'] == Approx(w1 * 0.25 / (w0 + w1)).epsilon(1e-12));
  CHECK(two[end_of_text] == 0);
  CHECK(std::accumulate(two.begin(), two.end(), 0.0) == Approx(1.0).epsilon(1e-12));
  // All three: the mixture itself.
  const auto three = sys.parameters().mix_consulted(ordered, 3);
  CHECK(three[end_of_text] == Approx(w[order[2]]).epsilon(1e-12));
  CHECK(three['a'] == Approx(w0 * 0.5).epsilon(1e-12));
  // One: the first teacher alone.
  CHECK(sys.parameters().mix_consulted(ordered, 1)['a'] == Approx(0.5).epsilon(1e-12));
}

// ---- the cascade (system/cascade.hpp) ---------------------------------------------------------

TEST_CASE("reference: a 3-teacher cascade's thresholds and escalations, computed by hand", "[fusion-ref]") {
  // Four positions; teacher 0 is uniform over 2, 4, 8, 16 outcomes (entropies log 2 .. log 16). Teacher 1
  // equals teacher 0, so the mixture of the first two has teacher 0's entropy; teacher 2 is sure of one
  // outcome outside, so mixing all three lowers nothing but changes the entropy.
  position_data pd;
  for (const std::size_t m : {2, 4, 8, 16}) {
    pd.dists.push_back({uniform_run(0, m), uniform_run(0, m), uniform_over({200})});
    pd.observed.push_back(0);
  }
  // The mixer: the plain mean of the consulted teachers' distributions.
  const subset_mixer mean = [](std::span<const byte_distribution> o, std::size_t k) {
    byte_distribution p{};
    for (std::size_t t = 0; t < k; ++t)
      for (std::size_t c = 0; c < p.size(); ++c) p[c] += o[t][c] / double(k);
    return p;
  };
  // Share 1/2 at every stage. Stage 1 sees teacher 0's entropies {log 2, log 4, log 8, log 16}: the
  // threshold is the second smallest, log 4, so the positions of 8 and 16 escalate. Stage 2 sees the mean
  // of teachers 0 and 1 there, {log 8, log 16}: the threshold is log 8, and only the position of 16 goes on.
  const auto th = cascade_thresholds(pd, 0.5, mean);
  REQUIRE(th.size() == 2);
  CHECK(th[0] == Approx(float_up(std::log(4.0))).margin(1e-6));
  CHECK(th[1] == Approx(float_up(std::log(8.0))).margin(1e-6));
  // With those thresholds, positions consult 1, 1, 2, 3 teachers.
  const std::size_t want[] = {1, 1, 2, 3};
  double nats = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const auto s = cascade_position(pd.dists[i], th, mean);
    CHECK(s.consulted == want[i]);
    nats -= std::log(s.p[0]);
  }
  // Bits per byte by hand: p(0) = 1/2, 1/4, 1/8 (mean of two equal), and (2/3)(1/16) for all three.
  const double by_hand = (std::log(2.0) + std::log(4.0) + std::log(8.0) + std::log(24.0)) / (4 * std::log(2.0));
  CHECK(nats / (4 * std::log(2.0)) == Approx(by_hand).epsilon(1e-12));
  const auto ev = evaluate_cascade(pd, th, mean);
  CHECK(ev.bits_per_byte == Approx(by_hand).epsilon(1e-12));
  CHECK(ev.escalated_share == 0.5);
  CHECK(ev.consulted_mean == Approx(7.0 / 4).epsilon(1e-15));
}

// ---- the router (system/router.hpp) -----------------------------------------------------------

TEST_CASE("reference: the router's byte features count exactly the first prefix_bytes bytes", "[fusion-ref]") {
  const std::vector<float> pooled = {0.5f, -2.0f};
  const auto f = router_features("abcabx", 4, pooled);
  REQUIRE(f.size() == 256 + 2);
  // "abca": a twice, b and c once, over 4 bytes; 'x' (byte 6) is outside the prefix.
  CHECK(f['a'] == 0.5f);
  CHECK(f['b'] == 0.25f);
  CHECK(f['c'] == 0.25f);
  CHECK(f['x'] == 0.0f);
  CHECK(std::accumulate(f.begin(), f.begin() + 256, 0.0f) == 1.0f);
  CHECK(f[256] == 0.5f);
  CHECK(f[257] == -2.0f);
  // A prompt shorter than the prefix: all its bytes.
  const auto g = router_features("zz", 64, pooled);
  CHECK(g['z'] == 1.0f);
  // One byte.
  CHECK(router_features("qrs", 1, pooled)['q'] == 1.0f);
}

// ---- top-k taps (model/model.hpp) -------------------------------------------------------------

TEST_CASE("reference: the top-k taps are the k largest logits of a full sort, runner-up included", "[fusion-ref]") {
  const auto m = load_cpu_model(models() / "llama", {.threads = 1});
  const auto V = std::size_t(m->arch().dims.vocab_size);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 24; ++i) ids.push_back(std::int32_t((i * 53 + 5) % std::int32_t(V)));
  auto c = m->new_cache(std::int64_t(ids.size()));
  const std::int64_t k = 6;
  const auto r = m->forward(
      ids, c, {.all_logits = true, .taps = {.layers = {}, .final_norm = false, .top_k = k, .distribution = true}});
  REQUIRE(r.taps.top_ids.size() == ids.size() * std::size_t(k));
  std::size_t compared = 0;
  for (std::size_t p = 0; p < ids.size(); ++p) {
    const float* logits = r.logits.data.data() + p * V;
    const float* lp = r.taps.logprobs.data.data() + p * V;
    std::vector<std::int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return logits[a] > logits[b]; });
    for (std::size_t j = 0; j < std::size_t(k); ++j) {
      INFO("position " << p << ", rank " << j);
      // The value at each rank is the full sort's (ties in the log-probabilities may swap ids).
      CHECK(r.taps.top_logprobs.data[p * std::size_t(k) + j] == lp[order[j]]);
      const bool tied = (j > 0 && lp[order[j - 1]] == lp[order[j]]) || lp[order[j + 1]] == lp[order[j]];
      if (!tied) {
        CHECK(r.taps.top_ids[p * std::size_t(k) + j] == order[j]);
        ++compared;
      }
    }
  }
  CHECK(compared > ids.size() * std::size_t(k) / 2);
}

// ---- bf16 rounding of stored hidden states (features/extract.hpp) -----------------------------

TEST_CASE("reference: f32 -> bf16 rounds to nearest, ties to even (bit patterns by hand)", "[fusion-ref]") {
  const auto bits = [](std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return fusion::detail::to_bf16(f);
  };
  CHECK(bits(0x3f800000u) == 0x3f80);  // 1.0 exactly
  CHECK(bits(0x3f804000u) == 0x3f80);  // below half an ulp: down
  CHECK(bits(0x3f80c000u) == 0x3f81);  // above half: up
  CHECK(bits(0x3f807fffu) == 0x3f80);
  CHECK(bits(0x3f808001u) == 0x3f81);
  CHECK(bits(0x3f808000u) == 0x3f80);  // a tie, even below: stays
  CHECK(bits(0x3f818000u) == 0x3f82);  // a tie, odd below: up to even
  CHECK(bits(0xbf818000u) == 0xbf82);  // the same negative
  CHECK(bits(0xbf80c000u) == 0xbf81);
  CHECK(bits(0x3fffffffu) == 0x4000);  // carries into the exponent
  CHECK(bits(0x7f7fffffu) == 0x7f80);  // the largest float rounds to infinity
  CHECK(bits(0x7f800000u) == 0x7f80);  // infinity stays
  CHECK(bits(0x00000001u) == 0x0000);  // the smallest subnormal rounds to zero
  const auto nan = bits(0x7fc00001u);
  CHECK((nan & 0x7f80) == 0x7f80);
  CHECK((nan & 0x007f) != 0);  // NaN stays NaN
  // Against the nearest bf16 by distance, for values across the range (ties excluded by construction).
  for (std::uint32_t u = 0x00800000u; u < 0x7f000000u; u += 0x00731b57u) {
    float f;
    std::memcpy(&f, &u, 4);
    const auto lo = std::uint16_t(u >> 16), hi = std::uint16_t(lo + 1);
    const auto value = [](std::uint16_t h) {
      const std::uint32_t w = std::uint32_t(h) << 16;
      float g;
      std::memcpy(&g, &w, 4);
      return double(g);
    };
    const double dl = double(f) - value(lo), dh = value(hi) - double(f);
    if (dl == dh) continue;
    INFO(std::hex << u);
    CHECK(bits(u) == (dl < dh ? lo : hi));
  }
}

// ---- the stitch's unigram baseline (bridges/stitch.hpp) ---------------------------------------

TEST_CASE("reference: the stitch scores the unigram on the token that follows each boundary", "[fusion-ref]") {
  // The same teacher on both sides at its head: every text token's end is a shared boundary, and the
  // token after it is the target. A unigram of log p(v) = -(v + 1) / 100 makes the loss the mean of
  // (next id + 1) / 100 over the text's tokens after the first, read off the tokenizer's own encoding.
  const auto path = models() / "qwen2";
  const auto m = load_cpu_model(path, {.threads = 1});
  const auto tok = tokenizer::load(path);
  const auto head = frozen_head::load(path, 1);
  const auto V = m->arch().dims.vocab_size;
  bridge<linear_kind, float> br({.d_in = 64, .d_out = 64});
  std::vector<double> eye(64 * 64, 0.0), zero(64, 0.0);
  for (std::size_t i = 0; i < 64; ++i) eye[i * 64 + i] = 1;
  br.start_at(eye, zero);
  const bridge_fn fn = [&](std::span<const float> x) { return br.apply(x); };
  unigram uni{{}, "test"};
  for (std::int64_t v = 0; v < V; ++v) uni.logp.push_back(-double(v + 1) / 100);
  const std::vector<std::string> docs = {"Hello there, a short line.", "x = 12 + 30; done"};
  const auto s = score_stitch(*m, tok, *m, tok, fn, head, &uni, docs, {.layer_a = -1, .layer_b = -1, .context = 64});
  double sum = 0;
  std::int64_t n = 0;
  for (const auto& d : docs) {
    const auto ids = tok.encode(d, true);
    const auto prefix = tok.prefix_ids().size();
    REQUIRE(ids.size() <= 64);
    for (std::size_t p = prefix + 1; p < ids.size(); ++p) sum += double(ids[p] + 1) / 100, ++n;
  }
  CHECK(s.boundaries == n);
  CHECK(s.loss_unigram == Approx(sum / double(n)).epsilon(1e-12));
}

// ---- greedy generation ends the text when that is most likely (system/system.hpp) -------------

namespace {

/// The gpt_neox fixture with a final LayerNorm of weight 0 and bias 100·e₀, and a head whose only
/// non-zero entry is eos's first column: every position's logits are 100 for eos and 0 for the rest,
/// so the end of the text is by far the most likely outcome wherever the text could end.
fs::path ending_teacher(const temp_dir& d) {
  const auto src = models() / "gpt_neox";
  const auto dst = d.path / "ending";
  fs::create_directories(dst);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(src / f, dst / f);
  const safetensors_file in((src / "model.safetensors").string());
  std::vector<std::vector<float>> keep;
  keep.reserve(in.size());
  std::vector<tensor_to_write> out;
  const auto eos = tokenizer::load(src).eos().value();
  for (const auto& name : in.names()) {
    const auto v = in.tensor(name);
    REQUIRE(v.type == dtype::f32);
    auto& x = keep.emplace_back(std::size_t(v.numel()));
    std::memcpy(x.data(), v.data.data(), x.size() * 4);
    if (name == "gpt_neox.final_layer_norm.weight") std::fill(x.begin(), x.end(), 0.0f);
    if (name == "gpt_neox.final_layer_norm.bias") std::fill(x.begin(), x.end(), 0.0f), x[0] = 100.0f;
    if (name == "embed_out.weight") {
      std::fill(x.begin(), x.end(), 0.0f);
      x[std::size_t(eos) * std::size_t(v.shape[1])] = 1.0f;
    }
    out.push_back({name, dtype::f32, v.shape, std::as_bytes(std::span(x))});
  }
  write_safetensors((dst / "model.safetensors").string(), out, {{"format", "pt"}});
  return dst;
}

}  // namespace

TEST_CASE("reference: greedy generation ends the text where the end is the most likely outcome", "[fusion-ref]") {
  temp_dir d;
  const auto teacher = ending_teacher(d);
  {  // the teacher alone: eos is its most likely next token after any prompt
    const auto m = load_cpu_model(teacher, {.threads = 1});
    const auto tok = tokenizer::load(teacher);
    REQUIRE(tok.eos());
    auto ids = root_context(tok, m->arch().dims.vocab_size);
    const auto e = tok.encode("Hi");
    ids.insert(ids.end(), e.begin(), e.end());
    auto c = m->new_cache(std::int64_t(ids.size()));
    const auto r = m->forward(ids, c, {.all_logits = false});
    const auto& l = r.logits.data;
    REQUIRE(std::size_t(std::max_element(l.begin(), l.end()) - l.begin()) == std::size_t(*tok.eos()));
  }
  // Prompts of bytes that begin no longer token of this vocabulary (one tokenization each, byte by byte):
  // every way of reading further costs a token of probability about e^-100, the end costs eos's ~1.
  auto sys = load_bundle(bundle_of(d, {{"ending", teacher}}, "ending.nexus"));
  for (const std::string prompt : {"QX", "B@{"}) {
    INFO(prompt);
    const auto p = sys.mix(std::vector<byte_distribution>{sys.distributions(prompt)[0].back()});
    REQUIRE(p[end_of_text] > 0.99);
    CHECK(sys.generate(prompt, {.max_bytes = 8}) == "");
    CHECK(sys.generate(prompt, {.max_bytes = 8, .mode = system_mode::mixture}) == "");
  }
}
