// A known text scored by a fused system: every teacher's byte-level distributions (one teacher
// resident at a time), and from them the nats of the text under each teacher, the mixture and the
// cascade, position by position as generation would read them.
#pragma once

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/fusion/bytes/score.hpp"
#include "nexus/fusion/system/lazy_cascade.hpp"
#include "nexus/fusion/system/parameters.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"

namespace nexus::fusion {

/// [teacher][position]: each teacher's byte_distributions over `text`.
using system_distributions = std::vector<std::vector<byte_distribution>>;

/// Every teacher's byte-level distributions over `text`, one teacher resident at a time; with
/// `seconds` and `stats`, each teacher's time and byte-level counts appended.
inline system_distributions teacher_distributions(teacher_set& teachers, std::string_view text,
                                                  std::vector<double>* seconds = nullptr,
                                                  std::vector<byte_level_stats>* stats = nullptr) {
  system_distributions all;
  for (std::size_t t = 0; t < teachers.size(); ++t) {
    const auto t0 = std::chrono::steady_clock::now();
    byte_level_stats st;
    all.push_back(byte_distributions(teachers.get(t), teachers.tok(t), text, &st));
    if (seconds) seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (stats) stats->push_back(st);
  }
  return all;
}

/// −Σ log p(byte) of a text under each teacher, the mixture, and the cascade where there is one.
struct text_nats {
  std::vector<double> teachers;
  double mixture = 0;
  std::optional<double> cascade;
  std::size_t escalated = 0;  // positions where the cascade consulted more than its first teacher
};

/// −Σ log p(byte) of `text` under a mixture of kind `k` read along it from its start.
inline double mixture_nats(const system_distributions& all, std::string_view text, mixture_kind k,
                           std::span<const double> params) {
  document_mixer mixer(k, params);
  std::vector<byte_distribution> at(all.size());
  double nats = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    for (std::size_t t = 0; t < all.size(); ++t) at[t] = all[t][i];
    nats -= std::log(mixer.mix(at)[c]);
    mixer.observe(at, c);
  }
  return nats;
}

/// The nats of `text` from the teachers' distributions over it (`all`), under the parameters `p`.
/// `positions`, when given, receives each position's distributions in cascade order and its byte.
inline text_nats score_distributions(const system_distributions& all, std::string_view text, const system_parameters& p,
                                     position_data* positions = nullptr) {
  const auto T = all.size();
  text_nats n;
  n.teachers.assign(T, 0.0);
  if (p.thresholds) n.cascade = 0.0;
  n.mixture = mixture_nats(all, text, p.kind, p.weights);
  std::vector<byte_distribution> at(T), ordered(T);
  const auto cascade = p.cascade_mixer();
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    for (std::size_t t = 0; t < T; ++t) {
      at[t] = all[t][i];
      n.teachers[t] -= std::log(at[t][c]);
    }
    for (std::size_t k = 0; k < T; ++k) ordered[k] = at[p.order[k]];
    if (p.thresholds) {
      const auto step = cascade_position(ordered, *p.thresholds, cascade);
      *n.cascade -= std::log(step.p[c]);
      n.escalated += step.consulted > 1;
    }
    if (positions) positions->dists.push_back(ordered), positions->observed.push_back(c);
  }
  return n;
}

/// What one teacher did in a mode's run over a text.
struct teacher_run {
  std::size_t bytes_read = 0;     // positions where its distribution was read
  std::size_t bytes_decided = 0;  // positions where it was the last teacher read (a mixture: every teacher, all)
  std::size_t forward_tokens = 0;
  double seconds = 0;  // its forwards (and, for the router's feature teacher, the routing)
};

/// A fused system's mode run over a text, computing only what that mode needs.
struct mode_run {
  double nats = 0, seconds = 0;
  std::size_t escalated = 0;          // cascade: positions that read more than the first teacher
  std::optional<std::size_t> routed;  // router: the teacher chosen
  std::vector<teacher_run> teachers;  // by teacher index (not cascade order)
};

namespace run_clock {
using clock = std::chrono::steady_clock;
inline double since(clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); }
}  // namespace run_clock

/// The teacher the router picks for `prompt`: a constant router needs no features (no forward at all);
/// otherwise the feature teacher reads the prompt's first bytes (router.hpp).
inline std::size_t route_prompt(teacher_set& teachers, const system_parameters& p, std::string_view prompt) {
  if (!p.router) throw usage_error("route", "the system has no router (fit one: bundle create --fit)");
  if (p.router->constant()) return p.router->constant_choice();
  const auto f = p.feature_teacher;
  return p.router->route(router_features_of(teachers.get(f), teachers.tok(f), prompt, p.router->prefix_bytes));
}

/// The mixture: every teacher reads every byte (one resident at a time), then they are mixed.
inline mode_run run_mixture(teacher_set& teachers, const system_parameters& p, std::string_view text) {
  const auto t0 = run_clock::clock::now();
  mode_run r;
  system_distributions all;
  for (std::size_t t = 0; t < teachers.size(); ++t) {
    const auto t1 = run_clock::clock::now();
    byte_level_stats stats;
    all.push_back(byte_distributions(teachers.get(t), teachers.tok(t), text, &stats));
    r.teachers.push_back({text.size(), text.size(), stats.forward_tokens, run_clock::since(t1)});
  }
  r.nats = mixture_nats(all, text, p.kind, p.weights);
  r.seconds = run_clock::since(t0);
  return r;
}

/// The router: routes once on the text's first bytes, then only the teacher it picks reads the text.
inline mode_run run_router(teacher_set& teachers, const system_parameters& p, std::string_view text) {
  const auto t0 = run_clock::clock::now();
  mode_run r;
  r.teachers.assign(teachers.size(), {});
  const auto chosen = route_prompt(teachers, p, text);
  if (!p.router->constant()) r.teachers[p.feature_teacher].seconds += run_clock::since(t0);
  r.routed = chosen;
  const auto t1 = run_clock::clock::now();
  const auto& m = teachers.get(chosen);
  const auto s = score_bytes(m, teachers.tok(chosen), text, false);
  auto& c = r.teachers[chosen];
  c.bytes_read = c.bytes_decided = text.size();
  c.forward_tokens = s.stats.forward_tokens;
  c.seconds += run_clock::since(t1);
  r.nats = -s.log_likelihood;
  r.seconds = run_clock::since(t0);
  return r;
}

/// The cascade run as it saves work (lazy_cascade.hpp): a later teacher reads only where reached.
inline mode_run run_cascade(teacher_set& teachers, const system_parameters& p, std::string_view text) {
  const auto t0 = run_clock::clock::now();
  lazy_cascade c(teachers, p, std::int64_t(text.size()));
  mode_run r;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    r.nats -= std::log(c.step().p[b]);
    c.push(b, text.substr(i));
  }
  r.escalated = c.escalated();
  r.teachers.assign(p.order.size(), {});
  for (std::size_t k = 0; k < p.order.size(); ++k) {
    const auto& n = c.counts(k);
    r.teachers[p.order[k]] = {n.bytes_read, n.bytes_decided, c.forward_tokens(k), n.seconds};
  }
  r.seconds = run_clock::since(t0);
  return r;
}

struct teacher_score {
  std::string name;
  double bits_per_byte = 0, seconds = 0;
  std::size_t forward_tokens = 0;  // tokens run through the model for its byte-level view
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

}  // namespace nexus::fusion
