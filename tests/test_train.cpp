// Training bridges: the backward of every norm kind, the objectives and the frozen head of a teacher
// against fp64 finite differences; the head's forward against the model's own logits; AdamW, the
// schedule and clipping against torch (tests/data/train/adamw.json); determinism from a seed and
// resumption from a checkpoint.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <random>

#include "nexus/fusion/bridges/frozen_head.hpp"
#include "nexus/fusion/bridges/losses.hpp"
#include "nexus/fusion/maps/closed_form.hpp"
#include "nexus/fusion/bridges/stitch.hpp"
#include "nexus/fusion/bridges/train_bridge.hpp"
#include "nexus/fusion/bridges/train.hpp"
#include "nexus/fusion/bridges/bridge.hpp"
#include "reference.hpp"

using namespace nexus;
using namespace nexus::fusion;
namespace fs = std::filesystem;

namespace {

fs::path models() { return test::data_dir() / "models"; }

fs::path temp_path(const std::string& name) {
  static int counter = 0;
  auto p = fs::temp_directory_path() /
           ("nexus_train_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name);
  fs::remove_all(p);
  return p;
}

std::vector<double> random_vector(std::size_t n, std::uint32_t seed, double scale = 1.0) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

/// Central differences of f at x (every coordinate), step h.
template <class F>
std::vector<double> finite_differences(F&& f, std::vector<double> x, double h = 1e-5) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f(x);
    x[i] = keep - h;
    const double down = f(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (const double x : v) m = std::max(m, std::abs(x));
  return m;
}
double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("norm backward: every kind against fp64 finite differences") {
  const long long W = 24;
  const auto x = random_vector(W, 1, 2.0), dy = random_vector(W, 2);
  auto w = random_vector(W, 3, 0.5);
  const auto b = random_vector(W, 4, 0.5);
  for (const bool unit_offset : {false, true}) {
    for (const auto kind : {norm_kind::rms, norm_kind::layer, norm_kind::layer_no_bias, norm_kind::layer_no_affine}) {
      INFO("kind " << int(kind) << " unit_offset " << unit_offset);
      const math::basic_norm_params<double> p{rule_of(kind).weight ? w.data() : nullptr,
                                              rule_of(kind).bias ? b.data() : nullptr, 1e-5, unit_offset};
      visit_enum(kind, [&](auto k) {
        constexpr auto K = decltype(k)::value;
        // L = Σ dy · norm(x): its gradient is the backward of dy.
        auto loss = [&](const std::vector<double>& v) {
          auto y = v;
          math::normalize_row<K>(y.data(), W, p);
          double s = 0;
          for (long long i = 0; i < W; ++i) s += dy[i] * y[i];
          return s;
        };
        std::vector<double> dx(W), dw(W, 0.0), db(W, 0.0);
        math::normalize_row_backward<K>(x.data(), dy.data(), dx.data(), dw.data(), db.data(), W, p);
        const auto fd = finite_differences(loss, x);
        CHECK(max_diff(dx, fd) < 1e-8 * std::max(1.0, max_abs(fd)));
        if (p.weight) {
          const auto fdw = finite_differences(
              [&](const std::vector<double>& v) {
                const auto keep = w;
                w = v;
                const double l = loss(x);
                w = keep;
                return l;
              },
              w);
          CHECK(max_diff(dw, fdw) < 1e-8 * std::max(1.0, max_abs(fdw)));
        }
        if (p.bias)
          for (long long i = 0; i < W; ++i) CHECK(db[i] == Approx(dy[i]));
      });
    }
  }
}

TEST_CASE("objectives: MSE, cosine and top-k KL gradients against fp64 finite differences") {
  const std::int64_t n = 40;
  const auto y = random_vector(n, 5, 1.5);
  const auto td = random_vector(n, 6, 1.5);
  const std::vector<float> t(td.begin(), td.end());
  std::vector<double> g(n);
  SECTION("mse") {
    const double l = mse_row(y.data(), t.data(), n, g.data());
    const auto fd = finite_differences(
        [&](const std::vector<double>& v) { return mse_row<double>(v.data(), t.data(), n, nullptr); }, y);
    CHECK(max_diff(g, fd) < 1e-8);
    CHECK(l > 0);
    CHECK(mse_row<float>(t.data(), t.data(), n, nullptr) == 0.0);
  }
  SECTION("cosine") {
    const double l = cosine_row(y.data(), t.data(), n, g.data());
    const auto fd = finite_differences(
        [&](const std::vector<double>& v) { return cosine_row<double>(v.data(), t.data(), n, nullptr); }, y);
    CHECK(max_diff(g, fd) < 1e-8);
    CHECK(l > 0);
    CHECK(cosine_row<float>(t.data(), t.data(), n, nullptr) == Approx(0.0).margin(1e-12));
  }
  SECTION("top-k KL, with and without remaining mass") {
    // p: a distribution over the vocabulary of which the store keeps the k most likely.
    const auto pl = random_vector(n, 7, 2.0);
    std::vector<double> lp(n);
    double mx = *std::max_element(pl.begin(), pl.end()), z = 0;
    for (const double v : pl) z += std::exp(v - mx);
    for (std::int64_t v = 0; v < n; ++v) lp[v] = pl[v] - mx - std::log(z);
    std::vector<std::int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return lp[a] > lp[b]; });
    for (const std::int64_t k : {std::int64_t(5), n}) {
      INFO("k " << k);
      std::vector<float> top_lp;
      std::vector<std::int32_t> top_ids(order.begin(), order.begin() + k);
      for (const auto id : top_ids) top_lp.push_back(float(lp[id]));
      const double l = topk_kl_row(y.data(), n, top_lp, top_ids, g.data());
      const auto fd = finite_differences(
          [&](const std::vector<double>& v) { return topk_kl_row<double>(v.data(), n, top_lp, top_ids, nullptr); }, y);
      CHECK(max_diff(g, fd) < 1e-8);
      CHECK(l > 0.01);
      // Zero at p's own logits (within p's float storage), positive elsewhere.
      CHECK(std::abs(topk_kl_row<double>(lp.data(), n, top_lp, top_ids, nullptr)) < 1e-6);
      // The gradient sums to 1 − Σ p − r: zero, up to p's fp32 storage where the top k is everything.
      double sum = 0;
      for (const double v : g) sum += v;
      CHECK(std::abs(sum) < (k == n ? 1e-6 : 1e-12));
    }
  }
  SECTION("next-token loss") {
    double z = 0;
    for (const double v : y) z += std::exp(v);
    CHECK(next_token_loss(y.data(), n, 3) == Approx(std::log(z) - y[3]).epsilon(1e-12));
    CHECK_THROWS_AS(next_token_loss(y.data(), n, std::int32_t(n)), usage_error);
  }
  CHECK_THROWS_AS(parse_objective("l1"), usage_error);
}

TEST_CASE("frozen head: the model's own logits from its last layer's residual stream") {
  for (const auto* name : {"llama", "gemma3_text", "gemma2_softcap", "gpt2", "cohere", "qwen2"}) {
    INFO(name);
    const auto path = models() / name;
    const auto m = load_cpu_model(path, {.threads = 2});
    const std::vector<std::int32_t> ids = {1, 5, 9, 17, 33, 65, 7, 3};
    auto cache = m->new_cache(std::int64_t(ids.size()));
    const auto r = m->forward(ids, cache, {.taps = {.layers = {-1}}});
    const auto head = frozen_head::load(path, 2);
    REQUIRE(head.vocab() == m->arch().dims.vocab_size);
    std::vector<float> logits(r.logits.data.size());
    head.forward(r.taps.layers[0].data.data(), std::int64_t(ids.size()), logits.data());
    CHECK(logits == r.logits.data);
    // The fp64 reference agrees to fp32 rounding.
    const std::vector<double> h(r.taps.layers[0].data.begin(), r.taps.layers[0].data.end());
    std::vector<double> l64(logits.size());
    head.forward_fp64(h.data(), std::int64_t(ids.size()), l64.data());
    double worst = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::abs(l64[i] - double(logits[i])));
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("frozen head: KL through the head, backward against fp64 finite differences") {
  // RMSNorm (llama), Gemma's 1 + w with a tied head (gemma3_text), a final softcap (gemma2_softcap),
  // LayerNorm with bias (gpt2), a logit scale (cohere).
  for (const auto* name : {"llama", "gemma3_text", "gemma2_softcap", "gpt2", "cohere"}) {
    INFO(name);
    const auto head = frozen_head::load(models() / name, 2);
    const std::int64_t H = head.hidden(), V = head.vocab(), rows = 2, k = 6;
    const auto h = random_vector(std::size_t(rows * H), 11, 1.0);
    // Targets: top-k of another state's distribution.
    const auto other = random_vector(std::size_t(rows * H), 12, 1.0);
    std::vector<double> tl(std::size_t(rows * V));
    head.forward_fp64(other.data(), rows, tl.data());
    std::vector<std::vector<float>> top_lp(rows);
    std::vector<std::vector<std::int32_t>> top_ids(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      const double* row = tl.data() + r * V;
      const double mx = *std::max_element(row, row + V);
      double z = 0;
      for (std::int64_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
      std::vector<std::int32_t> order{};
      order.resize(std::size_t(V));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](auto a, auto b) { return row[a] > row[b]; });
      for (std::int64_t i = 0; i < k; ++i) {
        top_ids[r].push_back(order[i]);
        top_lp[r].push_back(float(row[order[i]] - mx - std::log(z)));
      }
    }
    auto loss = [&](const std::vector<double>& x) {
      std::vector<double> l(std::size_t(rows * V));
      head.forward_fp64(x.data(), rows, l.data());
      double s = 0;
      for (std::int64_t r = 0; r < rows; ++r)
        s += topk_kl_row<double>(l.data() + r * V, V, top_lp[r], top_ids[r], nullptr);
      return s;
    };
    std::vector<double> l(std::size_t(rows * V)), dl(std::size_t(rows * V)), dh(std::size_t(rows * H));
    head.forward_fp64(h.data(), rows, l.data());
    for (std::int64_t r = 0; r < rows; ++r) topk_kl_row(l.data() + r * V, V, top_lp[r], top_ids[r], dl.data() + r * V);
    head.backward_fp64(h.data(), l.data(), dl.data(), rows, dh.data());
    const auto fd = finite_differences(loss, h);
    CHECK(max_abs(fd) > 1e-4);
    CHECK(max_diff(dh, fd) < 1e-7 * std::max(1.0, max_abs(fd)));
    // The float path (the model's kernels, tiles of the head) agrees with fp64 to fp32 rounding.
    std::vector<float> hf(h.begin(), h.end()), lf(std::size_t(rows * V)), dlf(std::size_t(rows * V)),
        dhf(std::size_t(rows * H));
    head.forward(hf.data(), rows, lf.data());
    for (std::int64_t r = 0; r < rows; ++r)
      topk_kl_row(lf.data() + r * V, V, top_lp[r], top_ids[r], dlf.data() + r * V);
    head.backward(hf.data(), lf.data(), dlf.data(), rows, dhf.data());
    double worst = 0;
    for (std::size_t i = 0; i < dh.size(); ++i) worst = std::max(worst, std::abs(double(dhf[i]) - dh[i]));
    CHECK(worst < 1e-4 * std::max(1.0, max_abs(dh)));
  }
}

TEST_CASE("AdamW, warm-up + cosine and global-norm clipping: torch's values") {
  std::ifstream in(test::data_dir() / "train" / "adamw.json");
  const auto j = nlohmann::json::parse(in);
  std::vector<float> w = j["w0"].get<std::vector<float>>(), b = j["b0"].get<std::vector<float>>();
  std::vector<float> gw(w.size()), gb(b.size());
  std::vector<param_ref> params = {{"w", w, gw, true}, {"b", b, gb, false}};
  train_options o;
  o.steps = j["steps"];
  o.lr = j["lr"];
  o.warmup = j["warmup"];
  o.min_lr_ratio = j["min_lr_ratio"];
  o.weight_decay = j["weight_decay"];
  o.clip = j["clip"];
  o.beta1 = j["betas"][0];
  o.beta2 = j["betas"][1];
  o.eps = j["eps"];
  adamw opt(params);
  for (std::int64_t s = 0; s < o.steps; ++s) {
    INFO("step " << s);
    const auto jw = j["grads"][s][0].get<std::vector<float>>(), jb = j["grads"][s][1].get<std::vector<float>>();
    std::copy(jw.begin(), jw.end(), gw.begin());  // in place: the parameters' spans view these buffers
    std::copy(jb.begin(), jb.end(), gb.begin());
    CHECK(clip_global_norm(params, o.clip) == Approx(j["norms"][s].get<double>()).epsilon(1e-6));
    opt.step(params, o, s + 1, learning_rate(o, s));
    const auto ew = j["values"][s][0].get<std::vector<double>>(), eb = j["values"][s][1].get<std::vector<double>>();
    for (std::size_t i = 0; i < w.size(); ++i) CHECK(w[i] == Approx(ew[i]).margin(2e-6));
    for (std::size_t i = 0; i < b.size(); ++i) CHECK(b[i] == Approx(eb[i]).margin(2e-6));
  }
}

namespace {

/// A small regression problem: y = A x + c from noisy pairs, 3 → 2, with a held-out split.
struct regression {
  std::vector<float> a = std::vector<float>(6, 0.0f), c = std::vector<float>(2, 0.0f);
  std::vector<float> ga = std::vector<float>(6), gc = std::vector<float>(2);
  std::vector<std::array<float, 5>> train_rows, held_rows;
  regression() {
    std::mt19937 g(3);
    std::normal_distribution<float> d(0.0f, 1.0f);
    const float A[6] = {1.5f, -0.5f, 0.25f, 0.75f, 2.0f, -1.0f}, C[2] = {0.3f, -0.2f};
    for (int i = 0; i < 120; ++i) {
      std::array<float, 5> r{};
      for (int k = 0; k < 3; ++k) r[k] = d(g);
      for (int o = 0; o < 2; ++o)
        r[3 + o] = A[o * 3] * r[0] + A[o * 3 + 1] * r[1] + A[o * 3 + 2] * r[2] + C[o] + 0.1f * d(g);
      (i < 100 ? train_rows : held_rows).push_back(r);
    }
  }
  double loss_of(const std::array<float, 5>& r, bool grad, double scale) {
    double l = 0;
    for (int o = 0; o < 2; ++o) {
      double y = c[o];
      for (int k = 0; k < 3; ++k) y += double(a[o * 3 + k]) * r[k];
      const double e = y - r[3 + o];
      l += e * e;
      if (grad) {
        for (int k = 0; k < 3; ++k) ga[o * 3 + k] += float(2 * e * r[k] * scale);
        gc[o] += float(2 * e * scale);
      }
    }
    return l;
  }
  train_problem problem() {
    train_problem p;
    p.params = {{"a", a, ga, true}, {"c", c, gc, false}};
    p.examples = std::int64_t(train_rows.size());
    p.batch_loss = [this](std::span<const std::int64_t> idx) {
      double s = 0;
      for (const auto i : idx) s += loss_of(train_rows[std::size_t(i)], true, 1.0 / double(idx.size()));
      return s / double(idx.size());
    };
    p.held_out_loss = [this] {
      double s = 0;
      for (const auto& r : held_rows) s += loss_of(r, false, 0);
      return s / double(held_rows.size());
    };
    p.identity = {{"problem", "regression"}};
    return p;
  }
};

train_options small_options() {
  train_options o;
  o.steps = 60;
  o.batch = 16;
  o.lr = 0.05;
  o.warmup = 5;
  o.eval_every = 10;
  o.seed = 7;
  return o;
}

}  // namespace

TEST_CASE("training: the same seed gives bit-identical weights, another seed other ones") {
  regression r1, r2, r3;
  auto p1 = r1.problem(), p2 = r2.problem(), p3 = r3.problem();
  auto o = small_options();
  const auto res1 = train(p1, o);
  const auto res2 = train(p2, o);
  o.seed = 8;
  train(p3, o);
  CHECK(r1.a == r2.a);
  CHECK(r1.c == r2.c);
  CHECK(r1.a != r3.a);
  REQUIRE(res1.complete);
  REQUIRE(res1.curve.size() == 7);  // steps 0, 10, ..., 60
  for (std::size_t i = 0; i < res1.curve.size(); ++i) CHECK(res1.curve[i].held_out == res2.curve[i].held_out);
  // It learns: held-out loss falls well below where it started (the noise floor is 2 · 0.01).
  CHECK(res1.best_held_out < 0.2 * res1.initial_held_out);
  CHECK(res1.best_held_out <= res1.initial_held_out);
  // Batches: a permutation per epoch, every example once per epoch.
  batch_order b(7, 10, 4);
  std::vector<int> seen(10, 0);
  for (int s = 0; s < 5; ++s)
    for (const auto i : b.at(s)) ++seen[std::size_t(i)];
  CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 2; }));
}

TEST_CASE("training: resumed from a checkpoint, the weights of an uninterrupted run") {
  regression whole, parts;
  auto pw = whole.problem(), pp = parts.problem();
  auto o = small_options();
  const auto full = train(pw, o);
  o.checkpoint = temp_path("ckpt.safetensors");
  o.checkpoint_every = 10;
  // Stopped after step 37: the checkpoint of step 30 survives, the 7 steps after it are lost.
  const auto first = train(pp, o, {.progress = {}, .stop = [](std::int64_t s) { return s == 37; }});
  CHECK(!first.complete);
  regression resumed_state;  // a fresh process: parameters from their initial values, then the checkpoint
  auto pr = resumed_state.problem();
  const auto second = train(pr, o);
  CHECK(second.resumed_from == 30);
  CHECK(second.complete);
  CHECK(resumed_state.a == whole.a);
  CHECK(resumed_state.c == whole.c);
  REQUIRE(second.curve.size() == full.curve.size());
  for (std::size_t i = 0; i < full.curve.size(); ++i) CHECK(second.curve[i].held_out == full.curve[i].held_out);
  // Another run's options are refused by name.
  auto other = o;
  other.lr = 0.01;
  regression r;
  auto p = r.problem();
  CHECK_THROWS_WITH(train(p, other), Catch::Contains("lr differs"));
  fs::remove(o.checkpoint);
}

TEST_CASE("training: the parameters best on held-out data, never worse than the start") {
  regression r;
  auto p = r.problem();
  auto o = small_options();
  o.lr = 5.0;  // far too high: the loss rises; the start stays the best
  o.clip = 0;
  o.warmup = 0;
  const auto start_a = r.a;
  const auto res = train(p, o);
  CHECK(res.best_held_out <= res.initial_held_out);
  if (res.best_step == 0) CHECK(r.a == start_a);
  CHECK(p.held_out_loss() == res.best_held_out);
  CHECK(learning_rate(o, 0) == 5.0);
  CHECK(learning_rate(o, o.steps - 1) == Approx(0.5));
}

namespace {

std::vector<std::string> stitch_documents() {
  std::vector<std::string> docs;
  for (int i = 0; i < 3; ++i)
    docs.push_back("The quick brown fox " + std::to_string(i * 7) + " jumps over the lazy dog; naïve café and line " +
                   std::to_string(i) + ". def f(x): return x");
  return docs;
}

/// y = x: a linear bridge started at the identity map.
bridge<linear_kind, float> identity_bridge(std::int64_t d) {
  bridge<linear_kind, float> br({.d_in = d, .d_out = d});
  std::vector<double> w(std::size_t(d * d), 0.0), b(std::size_t(d), 0.0);
  for (std::int64_t i = 0; i < d; ++i) w[std::size_t(i * d + i)] = 1;
  br.start_at(w, b);
  return br;
}

}  // namespace

TEST_CASE("stitch: the identity bridge between a teacher and itself scores as the teacher") {
  const auto docs = stitch_documents();
  const auto path = models() / "qwen2";
  const auto m = load_cpu_model(path, {.threads = 2});
  const auto tok = tokenizer::load(path);
  const auto head = frozen_head::load(path, 2);
  const auto br = identity_bridge(64);
  const bridge_fn fn = [&](std::span<const float> x) { return br.apply(x); };
  SECTION("same tokenizer, a middle layer: bits per byte of the stitched model are B's") {
    const auto s = score_stitch(*m, tok, *m, tok, fn, head, nullptr, docs, {.layer_a = 1, .layer_b = 1, .context = 16});
    CHECK(s.same_tokenizer);
    CHECK(s.tokens > 20);
    CHECK(s.bpb_b > 0);
    CHECK(s.bpb_stitched == s.bpb_b);
    CHECK(s.bpb_a == s.bpb_b);
    CHECK(s.boundaries == 0);
  }
  SECTION("at the head, with a unigram: the stitched loss is B's and the share 1") {
    std::vector<std::int32_t> ids;
    for (const auto& d : docs) {
      const auto e = tok.encode(d);
      ids.insert(ids.end(), e.begin(), e.end());
    }
    const auto uni = unigram_from_ids(ids, m->arch().dims.vocab_size, "test");
    const auto s = score_stitch(*m, tok, *m, tok, fn, head, &uni, docs, {.layer_a = -1, .layer_b = -1, .context = 16});
    CHECK(s.boundaries > 20);
    CHECK(s.loss_stitched == Approx(s.loss_b).epsilon(1e-6));
    CHECK(s.loss_unigram != Approx(s.loss_b).epsilon(1e-3));  // (random tiny weights: worse than unigram)
    CHECK(s.share == Approx(1.0).epsilon(1e-5));
    // Another layer of A is not B's last layer: another loss, another share.
    const auto t = score_stitch(*m, tok, *m, tok, fn, head, &uni, docs, {.layer_a = 0, .layer_b = -1, .context = 16});
    CHECK(t.loss_stitched != Approx(s.loss_b).epsilon(1e-3));
    CHECK(t.share != Approx(1.0).epsilon(1e-3));
  }
}

TEST_CASE("stitch: across tokenizers, B's loss at the shared boundaries; a middle layer of B is refused") {
  const auto docs = stitch_documents();
  const auto pa = models() / "llama", pb = models() / "gemma3_text";
  const auto a = load_cpu_model(pa, {.threads = 2}), b = load_cpu_model(pb, {.threads = 2});
  const auto ta = tokenizer::load(pa), tb = tokenizer::load(pb);
  const auto head = frozen_head::load(pb, 2);
  const auto br = identity_bridge(64);
  const bridge_fn fn = [&](std::span<const float> x) { return br.apply(x); };
  std::vector<std::int32_t> ids;
  for (const auto& d : docs) {
    const auto e = tb.encode(d);
    ids.insert(ids.end(), e.begin(), e.end());
  }
  const auto uni = unigram_from_ids(ids, b->arch().dims.vocab_size, "test");
  const auto s = score_stitch(*a, ta, *b, tb, fn, head, &uni, docs, {.layer_a = -1, .layer_b = -1, .context = 16});
  CHECK(!s.same_tokenizer);
  CHECK(s.boundaries > 5);
  CHECK(std::isfinite(s.loss_b));
  CHECK(std::isfinite(s.loss_stitched));
  CHECK(s.share == Approx((s.loss_unigram - s.loss_stitched) / (s.loss_unigram - s.loss_b)));
  // The stitched path through an identity bridge from a foreign teacher is not B.
  CHECK(s.loss_stitched != Approx(s.loss_b).epsilon(1e-3));
  CHECK_THROWS_AS(score_stitch(*a, ta, *b, tb, fn, head, &uni, docs, {.layer_a = 1, .layer_b = 1, .context = 16}),
                  usage_error);
}

namespace {

/// A store of two tiny teachers (llama, qwen2: different tokenizers) over a few documents.
fs::path tiny_store() {
  static const fs::path dir = [] {
    const auto root = temp_path("store");
    fs::create_directories(root / "corpus");
    std::string jsonl;
    for (int i = 0; i < 10; ++i)
      jsonl +=
          nlohmann::json{{"text", "Document " + std::to_string(i) + ": the quick brown fox " + std::to_string(i * 13) +
                                      " jumps over the lazy dog, line " + std::to_string(i) +
                                      "; café and naïve. def f(x): return x * " + std::to_string(i)}}
              .dump() +
          "\n";
    std::ofstream(root / "corpus" / "docs.jsonl") << jsonl;
    extract_options o;
    o.teachers = {models() / "llama", models() / "qwen2"};
    o.corpus = {root / "corpus"};
    o.layers = {"0", "-1"};
    o.top_k = 8;
    o.dtype = "f32";
    o.context = 32;
    o.out = root / "store";
    o.cpu.threads = 2;
    extract(o);
    return root / "store";
  }();
  return dir;
}

}  // namespace

TEST_CASE("train-bridge on a store: starts at the closed-form fit, never worse on held-out data") {
  const feature_store s(tiny_store());
  const heldout_split split(s);
  const auto from = parse_store_layer(s, "0:-1"), to = parse_store_layer(s, "1:-1");
  const auto train_rows = read_pairs(s, from, to, split, split_part::train, 0);
  const auto held_rows = read_pairs(s, from, to, split, split_part::heldout, 0);
  REQUIRE(train_rows.rows > 50);
  REQUIRE(held_rows.rows > 10);
  store_pairs tp(s, from, to, split, split_part::train), hp(s, from, to, split, split_part::heldout);
  const auto fit = fit_ridge(accumulate(tp), accumulate(hp));
  train_options o;
  o.steps = 30;
  o.batch = 16;
  o.lr = 3e-3;
  o.warmup = 3;
  o.eval_every = 5;
  SECTION("linear, MSE: step 0 is the ridge map") {
    bridge<linear_kind, float> br({.d_in = 64, .d_out = 64});
    br.start_at(std::span<const double>(fit.map.w), std::span<const double>(fit.map.b));
    auto p = bridge_problem(br, train_rows, held_rows, objective::mse, nullptr);
    const auto r = train(p, o);
    const auto y = fit.map.apply(held_rows.x, held_rows.rows);
    double mse = 0;
    for (std::int64_t i = 0; i < held_rows.rows; ++i)
      mse += mse_row(y.data() + i * 64, held_rows.y.data() + i * 64, 64, static_cast<float*>(nullptr));
    CHECK(r.initial_held_out == Approx(mse / double(held_rows.rows)).epsilon(1e-5));
    CHECK(r.best_held_out <= r.initial_held_out);
    CHECK(p.held_out_loss() == r.best_held_out);
  }
  SECTION("MLP, KL through B's head: deterministic, never worse than its start") {
    const auto head = frozen_head::load(models() / "qwen2", 2);
    std::vector<std::vector<float>> weights;
    for (int run = 0; run < 2; ++run) {
      bridge<mlp_kind, float> br({.d_in = 64, .d_out = 64, .hidden = 32, .skip = true}, 5);
      br.start_at(std::span<const double>(fit.map.w), std::span<const double>(fit.map.b));
      auto p = bridge_problem(br, train_rows, held_rows, objective::kl, &head);
      const auto start = p.held_out_loss();
      o.restore_best = false;
      const auto r = train(p, o);
      CHECK(r.initial_held_out == start);
      CHECK(r.best_held_out <= r.initial_held_out);
      CHECK(r.curve.back().held_out < r.initial_held_out);  // it learns
      std::vector<float> all;
      for (const auto& q : br.parameters()) all.insert(all.end(), q.value.begin(), q.value.end());
      weights.push_back(all);
    }
    CHECK(weights[0] == weights[1]);
  }
  SECTION("KL needs the store's top-k and B's head") {
    bridge<linear_kind, float> br({.d_in = 64, .d_out = 64});
    auto p = bridge_problem(br, train_rows, held_rows, objective::kl, nullptr);
    CHECK_THROWS_AS(p.held_out_loss(), usage_error);
  }
}
