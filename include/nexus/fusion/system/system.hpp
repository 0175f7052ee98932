// A fused system: the teachers of a .nexus bundle, each seen one byte at a time (byte_level.hpp), so
// teachers of different tokenizers predict the same thing, combined as the bundle's mixture says
// (ensemble.hpp). Scoring runs the teachers one after another (only one need be resident: the memory
// budget holds); generation needs all of them at once and streams valid UTF-8, each teacher's KV
// cache advancing only as its tokens are decided. A fitted bundle also routes (router.hpp: one
// teacher per prompt, chosen from its first bytes) and cascades (cascade.hpp: the cheapest teacher
// first, the others where it is unsure).
//
//   auto sys = nexus::fusion::load_bundle("system.nexus", {.budget = 1ull << 30});
//   auto s = sys.score(text);                  // bits per byte: each teacher, mixture, cascade, router
//   auto answer = sys.generate("12+34=", {.max_bytes = 16, .stop = {"\n"}});
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/system/bundle.hpp"
#include "nexus/fusion/bytes/byte_level.hpp"
#include "nexus/fusion/system/cascade.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"
#include "nexus/fusion/system/router.hpp"
#include "nexus/generate/generate.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"

namespace nexus::fusion {

struct system_options {
  std::uint64_t budget = 0;  // most bytes of teacher weights resident at once; 0: the bundle's budget
  cpu_options cpu = {};
};

/// Row i: P(next outcome | text[0, i)), for i = 0 .. text.size() (the last row follows the whole text).
inline std::vector<byte_distribution> byte_distributions(const model& m, const tokenizer& tok, std::string_view text) {
  if (!utf8::valid(text)) throw usage_error("score", "text is not valid UTF-8");
  byte_level_options opt;
  opt.capacity = std::max<std::int64_t>(opt.capacity, std::int64_t(text.size()) + 16);
  byte_level_teacher t(m, tok, opt);
  std::vector<byte_distribution> rows;
  rows.reserve(text.size() + 1);
  rows.push_back(t.distribution());
  for (std::size_t i = 0; i < text.size(); ++i) {
    // The text is known: the bases of the next bytes run together (byte_level_teacher::look_ahead).
    if (opt.lookahead > 0 && t.looked_ahead().empty()) t.look_ahead(text.substr(i, opt.lookahead));
    t.push(static_cast<unsigned char>(text[i]));
    rows.push_back(t.distribution());
  }
  return rows;
}

struct teacher_score {
  std::string name;
  double bits_per_byte = 0, seconds = 0;
};

struct system_score {
  std::vector<teacher_score> teachers;
  double bits_per_byte = 0;                                        // of the mixture
  std::string mixture;                                             // its kind
  std::optional<double> cascade_bits_per_byte, cascade_escalated;  // with a cascade: its quality and share
  std::optional<std::size_t> routed_teacher;                       // with a router: the teacher it picks
  std::size_t bytes = 0;
  double seconds = 0;  // the whole score, teachers included
};

/// How generation combines the teachers. automatic: the router where the bundle has one, else the mixture.
enum class system_mode { automatic, mixture, cascade, router };

inline system_mode parse_system_mode(const std::string& s) {
  if (s == "auto") return system_mode::automatic;
  if (s == "mixture") return system_mode::mixture;
  if (s == "cascade") return system_mode::cascade;
  if (s == "router") return system_mode::router;
  throw usage_error("--mode", "'" + s + "' is not one of auto, mixture, cascade, router");
}

struct system_generate_options {
  std::size_t max_bytes = 256;
  std::vector<std::string> stop = {};                  // stop once the text ends with one of these (kept)
  std::function<void(std::string_view)> on_text = {};  // streamed complete UTF-8 characters
  system_mode mode = system_mode::automatic;
};

/// A development example: a prompt and what should follow it (a plain document: its first bytes and the rest).
struct dev_example {
  std::string prompt, continuation;
};

/// `text` as a development example: the first `prefix_bytes` bytes (cut back to a character boundary) and the rest.
inline dev_example split_document(std::string_view text, std::int64_t prefix_bytes) {
  auto k = std::min<std::size_t>(text.size(), std::size_t(std::max<std::int64_t>(prefix_bytes, 0)));
  while (k > 0 && k < text.size() && (static_cast<unsigned char>(text[k]) & 0xc0) == 0x80) --k;
  return {std::string(text.substr(0, k)), std::string(text.substr(k))};
}

struct system_fit_options {
  mixture_kind kind = mixture_kind::linear;
  std::int64_t prefix_bytes = 64;  // the router reads this many bytes of a prompt
  double cascade_share = 0.5;      // target share of positions escalated at each stage of the cascade
  std::function<void(std::size_t done, std::size_t total)> progress = {};  // after each example
};

/// Development examples as read by every teacher (fused_system::collect).
struct development_set {
  ensemble_data mixture;               // every position: each teacher's distribution, the observed byte
  position_data ordered;               // the same in the cascade's order
  std::vector<router_example> routed;  // examples with a prompt and a continuation
  std::int64_t prefix_bytes = 64;
  std::size_t examples = 0;
};

/// What fitting on development examples found (the system keeps it; save() writes it into the bundle).
struct system_fit {
  ensemble_fit mixture;
  std::optional<router_fit> router;      // with at least 8 examples that have continuations
  std::optional<cascade_point> cascade;  // on the development positions
  std::size_t positions = 0, examples = 0;
};

/// A mixture read along one document: each position mixed from the teachers' distributions; fixed
/// share also carries its weights from byte to byte (observe), the other kinds need no state.
class document_mixer {
 public:
  document_mixer(mixture_kind k, std::span<const double> w) : kind_(k), w_(w.begin(), w.end()) {
    if (k == mixture_kind::fixed_share) state_.emplace(w);
  }
  byte_distribution mix(std::span<const byte_distribution> d) const {
    std::vector<std::span<const double>> s(d.begin(), d.end());
    byte_distribution out{};
    switch (kind_) {
      case mixture_kind::linear: mix_linear(s, w_, out); break;
      case mixture_kind::log_linear: mix_log_linear(s, w_, out); break;
      case mixture_kind::entropy_gate: mix_entropy_gate(s, w_.at(0), out); break;
      case mixture_kind::fixed_share: mix_linear(s, state_->weights(), out); break;
    }
    return out;
  }
  /// The outcome that followed (fixed share updates its weights; the others ignore it).
  void observe(std::span<const byte_distribution> d, std::size_t outcome) {
    if (!state_) return;
    std::vector<std::span<const double>> s(d.begin(), d.end());
    state_->observe(s, outcome);
  }

 private:
  mixture_kind kind_;
  std::vector<double> w_;
  std::optional<fixed_share_state> state_;
};

class fused_system {
 public:
  explicit fused_system(const std::filesystem::path& bundle, system_options opt = {})
      : bundle_(bundle),
        teachers_(teacher_paths(bundle_), opt.budget ? opt.budget : bundle_.manifest().budget_bytes, opt.cpu) {
    const auto& m = bundle_.manifest();
    const auto T = teachers_.size();
    if (m.mixture) {
      kind_ = m.mixture->kind;
      const auto w = bundle_.parameter(m.mixture->weights);
      weights_.assign(w.begin(), w.end());
    } else {
      weights_.assign(T, 1.0 / double(T));  // no fit yet: an even linear mixture
    }
    // The cascade's default order and the router's feature teacher: cheapest first (fewest weight bytes).
    order_.resize(T);
    for (std::size_t t = 0; t < T; ++t) order_[t] = t;
    std::stable_sort(order_.begin(), order_.end(),
                     [&](auto a, auto b) { return teachers_.info(a).weight_bytes < teachers_.info(b).weight_bytes; });
    feature_teacher_ = order_.at(0);
    if (m.cascade) {
      order_.assign(m.cascade->order.begin(), m.cascade->order.end());
      const auto th = bundle_.parameter(m.cascade->thresholds);
      thresholds_ = std::vector<double>(th.begin(), th.end());
    }
    if (m.router) {
      const auto w = bundle_.parameter(m.router->weight), b = bundle_.parameter(m.router->bias);
      const auto F = std::int64_t(w.size() / T);
      if (F != feature_width())
        throw bundle_error(bundle_error::code::tensor_invalid, bundle_.path().string(),
                           "router.weight has " + std::to_string(F) + " features; this bundle's router reads " +
                               std::to_string(feature_width()) + " (256 byte features + the hidden width of '" +
                               m.teachers[feature_teacher_].name + "')");
      router_model r{m.router->prefix_bytes, affine_map::zero(F, std::int64_t(T))};
      for (std::int64_t f = 0; f < F; ++f)  // stored [features, teachers]; the map is [teachers, features]
        for (std::size_t t = 0; t < T; ++t) r.map.w[t * std::size_t(F) + std::size_t(f)] = w[std::size_t(f) * T + t];
      r.map.b.assign(b.begin(), b.end());
      router_ = std::move(r);
    }
  }

  const bundle_manifest& manifest() const noexcept { return bundle_.manifest(); }
  teacher_set& teachers() noexcept { return teachers_; }
  mixture_kind kind() const noexcept { return kind_; }
  const std::vector<double>& weights() const noexcept { return weights_; }
  const std::optional<router_model>& router() const noexcept { return router_; }
  const std::optional<std::vector<double>>& cascade_thresholds() const noexcept { return thresholds_; }
  const std::vector<std::size_t>& cascade_order() const noexcept { return order_; }
  void set_mixture(mixture_kind k, std::vector<double> w) {
    check_mixture(k, w);
    kind_ = k, weights_ = std::move(w);
  }

  /// The mixture of one position's teacher distributions (at a document's start, for fixed share).
  byte_distribution mix(std::span<const byte_distribution> d) const { return mixer().mix(d); }
  /// The mixture for reading one document from its start.
  document_mixer mixer() const { return document_mixer(kind_, weights_); }

  /// The mixture of the first `consulted` teachers of the cascade order (`ordered`: their
  /// distributions in that order); linear weights renormalised over them.
  byte_distribution mix_consulted(std::span<const byte_distribution> ordered, std::size_t consulted) const {
    // Fixed share escalates to the linear mixture of its prior (the cascade reads positions alone).
    const bool gate = kind_ == mixture_kind::entropy_gate;
    const auto kind = kind_ == mixture_kind::fixed_share ? mixture_kind::linear : kind_;
    std::vector<double> w;
    double sum = 0;
    for (std::size_t k = 0; k < consulted; ++k) sum += weights_.at(gate ? 0 : order_[k]);
    for (std::size_t k = 0; k < consulted; ++k) {
      const double v = weights_.at(gate ? 0 : order_[k]);
      w.push_back(kind == mixture_kind::linear && sum > 0 ? v / sum : v);
    }
    if (gate) w.resize(1);
    return document_mixer(kind, w).mix(ordered.first(consulted));
  }

  /// mix_consulted as the cascade's mixer.
  subset_mixer consulted_mixer() const {
    return [this](std::span<const byte_distribution> ordered, std::size_t k) { return mix_consulted(ordered, k); };
  }

  /// Every teacher's byte-level distributions over `text`, one teacher resident at a time: [teacher][position].
  std::vector<std::vector<byte_distribution>> distributions(std::string_view text,
                                                            std::vector<double>* seconds = nullptr) {
    std::vector<std::vector<byte_distribution>> all;
    for (std::size_t t = 0; t < teachers_.size(); ++t) {
      const auto t0 = std::chrono::steady_clock::now();
      all.push_back(byte_distributions(teachers_.get(t), teachers_.tok(t), text));
      if (seconds) seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return all;
  }

  /// The router's features of `prompt` (router.hpp): its byte histogram and the feature teacher's
  /// mean final hidden state over its first `prefix_bytes` bytes.
  std::vector<float> features(std::string_view prompt, std::int64_t prefix_bytes) {
    const auto head = split_document(prompt, prefix_bytes).prompt;
    const auto& m = teachers_.get(feature_teacher_);
    const auto& tok = teachers_.tok(feature_teacher_);
    auto ids = root_context(tok, m.arch().dims.vocab_size);
    const auto enc = tok.encode(head);
    ids.insert(ids.end(), enc.begin(), enc.end());
    auto cache = m.new_cache(std::int64_t(ids.size()));
    const auto r = m.forward(ids, cache, {.all_logits = false, .hidden_states = true});
    const auto& h = r.hidden.back();  // the final norm's output [positions, width]
    const auto H = h.shape.at(1), P = h.shape.at(0);
    std::vector<float> pooled(std::size_t(H), 0.0f);
    for (std::int64_t p = 0; p < P; ++p)
      for (std::int64_t k = 0; k < H; ++k) pooled[std::size_t(k)] += h.data[std::size_t(p * H + k)] / float(P);
    return router_features(head, prefix_bytes, pooled);
  }

  /// The teacher the router sends `prompt` to (requires a router).
  std::size_t route(std::string_view prompt) {
    if (!router_) throw usage_error("route", bundle_.path().string() + " has no router (fit one: bundle create --fit)");
    return router_->route(features(prompt, router_->prefix_bytes));
  }

  /// Bits per byte of `text` (valid UTF-8, not empty) under each teacher, the mixture, and the
  /// cascade and router where the bundle has them.
  system_score score(std::string_view text) {
    if (text.empty()) throw usage_error("score", "empty text");
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> secs;
    const auto all = distributions(text, &secs);
    system_score s;
    s.bytes = text.size();
    s.mixture = detail::name_of(kind_);
    const auto T = teachers_.size();
    std::vector<double> nats(T, 0.0);
    double mixed = 0, cascaded = 0, escalated = 0;
    std::vector<byte_distribution> at(T), ordered(T);
    auto mixture = mixer();
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      for (std::size_t t = 0; t < T; ++t) {
        at[t] = all[t][i];
        nats[t] -= std::log(at[t][c]);
      }
      mixed -= std::log(mixture.mix(at)[c]);
      mixture.observe(at, c);
      if (thresholds_) {
        for (std::size_t k = 0; k < T; ++k) ordered[k] = at[order_[k]];
        const auto step = cascade_position(ordered, *thresholds_, consulted_mixer());
        cascaded -= std::log(step.p[c]);
        escalated += step.consulted > 1;
      }
    }
    const double to_bits = 1.0 / (std::log(2.0) * double(text.size()));
    for (std::size_t t = 0; t < T; ++t) s.teachers.push_back({manifest().teachers[t].name, nats[t] * to_bits, secs[t]});
    s.bits_per_byte = mixed * to_bits;
    if (thresholds_)
      s.cascade_bits_per_byte = cascaded * to_bits, s.cascade_escalated = escalated / double(text.size());
    if (router_) s.routed_teacher = route(text);
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
  }

  /// Reads development examples once: every teacher's distributions at every position (in the
  /// cascade's order too), and for the router each example's features and each teacher's loss on the
  /// continuation. fit() then fits any mixture kind from it without running a teacher again.
  development_set collect(const std::vector<dev_example>& examples, const system_fit_options& opt = {}) {
    const auto T = teachers_.size();
    development_set dev{{std::int64_t(T), std::int64_t(end_of_text + 1), {}, {}, {}}, {}, {}, opt.prefix_bytes, 0};
    std::vector<double> row;
    for (std::size_t n = 0; n < examples.size(); ++n) {
      if (opt.progress) opt.progress(n, examples.size());
      const auto& e = examples[n];
      const std::string text = e.prompt + e.continuation;
      if (text.empty()) continue;
      ++dev.examples;
      dev.mixture.begin_document();
      const auto all = distributions(text);
      std::vector<float> losses(T, 0.0f);
      for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        row.clear();
        dev.ordered.dists.emplace_back();
        for (std::size_t k = 0; k < T; ++k) dev.ordered.dists.back().push_back(all[order_[k]][i]);
        for (std::size_t t = 0; t < T; ++t) {
          row.insert(row.end(), all[t][i].begin(), all[t][i].end());
          if (i >= e.prompt.size()) losses[t] -= float(std::log(all[t][i][c]) / double(e.continuation.size()));
        }
        dev.mixture.add(row, c);
        dev.ordered.observed.push_back(c);
      }
      if (T > 1 && !e.continuation.empty() && !e.prompt.empty())
        dev.routed.push_back({features(e.prompt, opt.prefix_bytes), std::move(losses)});
    }
    if (opt.progress) opt.progress(examples.size(), examples.size());
    if (dev.mixture.positions() == 0) throw usage_error("fit", "empty development text");
    return dev;
  }

  /// Fits the mixture (weights of kind `opt.kind`), the router and the cascade on development data;
  /// the system keeps them (save() writes them to the bundle).
  system_fit fit(const development_set& dev, const system_fit_options& opt = {}) {
    system_fit out;
    out.examples = dev.examples;
    out.positions = std::size_t(dev.mixture.positions());
    switch (opt.kind) {
      case mixture_kind::linear: out.mixture = fit_linear_mixture(dev.mixture); break;
      case mixture_kind::log_linear: out.mixture = fit_log_linear(dev.mixture); break;
      case mixture_kind::entropy_gate: out.mixture = fit_entropy_gate(dev.mixture); break;
      case mixture_kind::fixed_share: out.mixture = fit_fixed_share(dev.mixture); break;
    }
    set_mixture(opt.kind, out.mixture.weights);
    if (teachers_.size() > 1) {
      thresholds_ = fusion::cascade_thresholds(dev.ordered, opt.cascade_share, consulted_mixer());
      out.cascade = evaluate_cascade(dev.ordered, *thresholds_, consulted_mixer());
      out.cascade->target_share = opt.cascade_share;
    }
    if (dev.routed.size() >= 8) {
      out.router = fit_router(dev.routed, dev.prefix_bytes);
      router_ = out.router->model;
    }
    return out;
  }
  system_fit fit(const std::vector<dev_example>& examples, const system_fit_options& opt = {}) {
    return fit(collect(examples, opt), opt);
  }
  /// Plain development documents: each split into its first `opt.prefix_bytes` bytes and the rest.
  system_fit fit(const std::vector<std::string>& documents, const system_fit_options& opt = {}) {
    std::vector<dev_example> ex;
    for (const auto& doc : documents) ex.push_back(split_document(doc, opt.prefix_bytes));
    return fit(ex, opt);
  }

  /// Greedy continuation of `prompt`: with the router, by the one teacher it picks, decoding its own
  /// tokens (a routed teacher runs as itself: what it alone would say, at its own speed); with the
  /// cascade or the mixture, byte by byte from every teacher at once (all resident).
  std::string generate(std::string_view prompt, const system_generate_options& opt = {}) {
    if (!utf8::valid(prompt)) throw usage_error("generate", "prompt is not valid UTF-8");
    auto mode = opt.mode;
    if (mode == system_mode::automatic) mode = router_ ? system_mode::router : system_mode::mixture;
    if (mode == system_mode::cascade && !thresholds_)
      throw usage_error("generate", bundle_.path().string() + " has no cascade (fit one: bundle create --fit)");
    if (mode == system_mode::router) return generate_routed(route(prompt), prompt, opt);
    std::vector<std::size_t> used;  // teachers in the order the mode reads them
    if (mode == system_mode::cascade) used = order_;
    else
      for (std::size_t t = 0; t < teachers_.size(); ++t) used.push_back(t);
    std::uint64_t need = 0;
    for (const auto t : used) need += teachers_.info(t).weight_bytes;
    if (teachers_.budget() && need > teachers_.budget())
      throw budget_error(bundle_.path().string(), "generation needs " + std::to_string(used.size()) +
                                                      " teachers resident (" + format_bytes(need) +
                                                      "), more than the budget of " + format_bytes(teachers_.budget()));
    std::vector<std::unique_ptr<byte_level_teacher>> views;
    for (const auto t : used) {
      byte_level_options o;
      o.capacity = std::int64_t(prompt.size() + opt.max_bytes) + 16;
      views.push_back(std::make_unique<byte_level_teacher>(teachers_.get(t), teachers_.tok(t), o));
    }
    std::vector<byte_distribution> at(views.size());
    auto mixture = mixer();
    auto read = [&] {
      for (std::size_t k = 0; k < views.size(); ++k) at[k] = views[k]->distribution();
    };
    auto push = [&](unsigned char c) {
      if (mode == system_mode::mixture) mixture.observe(at, c);  // `at`: the distributions c followed
      for (auto& v : views) v->push(c);
      read();
    };
    read();
    for (std::size_t i = 0; i < prompt.size(); ++i) {
      for (auto& v : views)  // the prompt is known: its bases run ahead together
        if (v->looked_ahead().empty()) v->look_ahead(prompt.substr(i, byte_level_options{}.lookahead));
      push(static_cast<unsigned char>(prompt[i]));
    }
    std::string out, pending;  // pending: bytes of a character not yet complete
    while (out.size() + pending.size() < opt.max_bytes) {
      const auto p =
          mode == system_mode::cascade ? cascade_position(at, *thresholds_, consulted_mixer()).p : mixture.mix(at);
      // The most likely outcome that keeps the text valid UTF-8 and that every teacher can follow.
      std::size_t best = end_of_text;
      double best_p = p[end_of_text];
      const std::string so_far = std::string(prompt) + out + pending;
      for (std::size_t b = 0; b < end_of_text; ++b) {
        if (!(p[b] > best_p)) continue;
        bool ok = true;
        for (const auto& dk : at) ok = ok && dk[b] > 0;
        if (ok && utf8_valid_prefix(so_far + char(b))) best = b, best_p = p[b];
      }
      if (best == end_of_text) break;
      push(static_cast<unsigned char>(best));
      pending += char(best);
      if (utf8::valid(pending)) {
        out += pending;
        if (opt.on_text) opt.on_text(pending);
        pending.clear();
      }
      bool stop = false;
      for (const auto& st : opt.stop) stop = stop || (!st.empty() && out.size() >= st.size() && out.ends_with(st));
      if (stop) break;
    }
    return out;
  }

  /// Teacher `t` alone, greedy over its own tokens from the root context (as the byte-level view
  /// reads a text): the text up to and including a stop string, at most `max_bytes` (whole characters).
  std::string generate_routed(std::size_t t, std::string_view prompt, const system_generate_options& opt) {
    const auto& m = teachers_.get(t);
    const auto& tok = teachers_.tok(t);
    auto ids = root_context(tok, m.arch().dims.vocab_size);
    const auto enc = tok.encode(prompt);
    ids.insert(ids.end(), enc.begin(), enc.end());
    generate_options g;
    g.max_new_tokens = std::int64_t(opt.max_bytes);  // a token spells at least one byte
    if (tok.eos()) g.stop_tokens = {*tok.eos()};
    g.stop_strings = opt.stop;
    const auto r = nexus::generate(m, &tok, ids, g);
    std::string out = tok.decode(r.tokens, true);
    std::size_t cut = out.size();
    for (const auto& st : opt.stop)
      if (const auto at = st.empty() ? std::string::npos : out.find(st); at != std::string::npos)
        cut = std::min(cut, at + st.size());
    cut = std::min(cut, opt.max_bytes);
    while (cut > 0 && cut < out.size() && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
    out.resize(cut);
    if (!utf8::valid(out)) out.resize(out.size() - utf8::incomplete_tail(out));
    if (opt.on_text && !out.empty()) opt.on_text(out);
    return out;
  }

  /// Rewrites the bundle at `path` (this system's, or a copy of it) with the system's mixture, and
  /// its router and cascade where it has them; every other tensor is kept.
  void save(const std::filesystem::path& path) const {
    const auto T = teachers_.size();
    std::vector<float> w(weights_.begin(), weights_.end()), th, rw, rb;
    rewrite_bundle(path, [&](bundle_manifest& m, std::vector<tensor_to_write>& tensors) {
      m.mixture = bundle_mixture{kind_, "mixture.weights"};
      tensors.push_back({"mixture.weights", dtype::f32, {std::int64_t(w.size())}, std::as_bytes(std::span(w))});
      if (thresholds_) {
        th.assign(thresholds_->begin(), thresholds_->end());
        m.cascade = bundle_cascade{{order_.begin(), order_.end()}, "cascade.thresholds"};
        tensors.push_back({"cascade.thresholds", dtype::f32, {std::int64_t(th.size())}, std::as_bytes(std::span(th))});
      }
      if (router_) {
        const auto F = router_->map.d_in;
        rw.resize(std::size_t(F) * T);
        for (std::int64_t f = 0; f < F; ++f)
          for (std::size_t t = 0; t < T; ++t)
            rw[std::size_t(f) * T + t] = float(router_->map.w[t * std::size_t(F) + std::size_t(f)]);
        rb.assign(router_->map.b.begin(), router_->map.b.end());
        m.router = bundle_router{router_->prefix_bytes, "router.weight", "router.bias"};
        tensors.push_back({"router.weight", dtype::f32, {F, std::int64_t(T)}, std::as_bytes(std::span(rw))});
        tensors.push_back({"router.bias", dtype::f32, {std::int64_t(T)}, std::as_bytes(std::span(rb))});
      }
    });
  }

  /// Rewrites the bundle at `path`: `edit` changes the manifest and appends tensors; the old tensors
  /// whose names it appends are dropped. Written beside it and renamed: a reader never sees a partial file.
  template <class Edit>
  static void rewrite_bundle(const std::filesystem::path& path, Edit&& edit) {
    const auto tmp = std::filesystem::path(path.string() + ".tmp");
    {
      const bundle_file b(path);
      bundle_manifest m = b.manifest();
      std::vector<tensor_to_write> added, tensors;
      edit(m, added);
      for (const auto& name : b.tensors().names())
        if (std::none_of(added.begin(), added.end(), [&](const auto& a) { return a.name == name; })) {
          const auto v = b.tensors().tensor(name);
          tensors.push_back({name, v.type, v.shape, v.data});
        }
      tensors.insert(tensors.end(), added.begin(), added.end());
      write_bundle(tmp, m, tensors);
    }
    std::filesystem::rename(tmp, path);
  }

 private:
  static std::vector<std::filesystem::path> teacher_paths(const bundle_file& b) {
    std::vector<std::filesystem::path> paths;
    for (std::size_t i = 0; i < b.manifest().teachers.size(); ++i) paths.push_back(resolve_teacher(b, i));
    return paths;
  }
  void check_mixture(mixture_kind k, const std::vector<double>& w) const {
    const auto want = std::size_t(mixture_parameters(k, std::int64_t(teachers_.size())));
    if (w.size() != want)
      throw usage_error("mixture", std::to_string(w.size()) + " weights for a " + detail::name_of(k) + " mixture of " +
                                       std::to_string(teachers_.size()) + " teachers (" + std::to_string(want) +
                                       " needed)");
  }
  std::int64_t feature_width() const {
    return router_byte_features + teachers_.info(feature_teacher_).arch.dims.hidden_size;
  }

  bundle_file bundle_;
  teacher_set teachers_;
  mixture_kind kind_ = mixture_kind::linear;
  std::vector<double> weights_;
  std::vector<std::size_t> order_;  // the cascade's teachers, cheapest first
  std::size_t feature_teacher_ = 0;
  std::optional<std::vector<double>> thresholds_;
  std::optional<router_model> router_;
};

/// Opens a bundle and its teachers (checked by sha256) as one system.
inline fused_system load_bundle(const std::filesystem::path& path, system_options opt = {}) {
  return fused_system(path, opt);
}

/// Rewrites the bundle at `path` with a mixture (weights as an F32 tensor "mixture.weights"),
/// keeping every other tensor.
inline void save_mixture(const std::filesystem::path& path, mixture_kind k, std::span<const double> weights) {
  std::vector<float> w(weights.begin(), weights.end());
  fused_system::rewrite_bundle(path, [&](bundle_manifest& m, std::vector<tensor_to_write>& tensors) {
    m.mixture = bundle_mixture{k, "mixture.weights"};
    tensors.push_back({"mixture.weights", dtype::f32, {std::int64_t(w.size())}, std::as_bytes(std::span(w))});
  });
}

}  // namespace nexus::fusion
