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
#include "nexus/fusion/system/parameters.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"

namespace nexus::fusion {

/// [teacher][position]: each teacher's byte_distributions over `text`.
using system_distributions = std::vector<std::vector<byte_distribution>>;

/// Every teacher's byte-level distributions over `text`, one teacher resident at a time; with
/// `seconds`, each teacher's time appended.
inline system_distributions teacher_distributions(teacher_set& teachers, std::string_view text,
                                                  std::vector<double>* seconds = nullptr) {
  system_distributions all;
  for (std::size_t t = 0; t < teachers.size(); ++t) {
    const auto t0 = std::chrono::steady_clock::now();
    all.push_back(byte_distributions(teachers.get(t), teachers.tok(t), text));
    if (seconds) seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
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

/// A cascade run as it saves work: its first teacher reads every byte; a later one reads a position
/// only where the cascade reaches it, catching up over the bytes before by byte_level_teacher::skip
/// (only the bases that position needs run). Equals score_distributions' cascade (to GEMM rounding).
struct cascade_run {
  double nats = 0;
  std::size_t escalated = 0;           // positions that consulted more than the first teacher
  std::vector<std::size_t> consulted;  // [teacher, in cascade order]: positions it was read at
  std::vector<std::size_t> decided;    // [teacher, in cascade order]: positions where it was the last read
  std::vector<std::size_t> forward_tokens;
  std::vector<double> seconds;
};

inline cascade_run run_cascade(teacher_set& teachers, const system_parameters& p, std::string_view text) {
  if (!p.thresholds) throw usage_error("cascade", "the system has no cascade (fit one: bundle create --fit)");
  const auto T = p.order.size();
  using clock = std::chrono::steady_clock;
  byte_level_options opt;
  opt.capacity = std::max<std::int64_t>(opt.capacity, std::int64_t(text.size()) + 16);
  std::vector<std::unique_ptr<byte_level_teacher>> views;
  for (const auto t : p.order)
    views.push_back(std::make_unique<byte_level_teacher>(teachers.get(t), teachers.tok(t), opt));
  cascade_run r;
  r.consulted.assign(T, 0);
  r.decided.assign(T, 0);
  r.seconds.assign(T, 0.0);
  std::vector<std::size_t> at(T, 0);  // bytes each view has read
  std::vector<byte_distribution> ordered(T);
  const auto mix = p.cascade_mixer();
  auto timed = [&](std::size_t k, auto&& f) {
    const auto t0 = clock::now();
    f();
    r.seconds[k] += std::chrono::duration<double>(clock::now() - t0).count();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    ordered[0] = views[0]->distribution();
    std::size_t consulted = 1;
    byte_distribution d = ordered[0];
    while (consulted < T && entropy(d) > (*p.thresholds)[consulted - 1]) {
      const auto k = consulted++;
      timed(k, [&] {
        views[k]->skip(text.substr(at[k], i - at[k]));
        at[k] = i;
        ordered[k] = views[k]->distribution();
      });
      d = mix(ordered, consulted);
    }
    for (std::size_t k = 0; k < consulted; ++k) ++r.consulted[k];
    ++r.decided[consulted - 1];
    r.escalated += consulted > 1;
    r.nats -= std::log(d[c]);
    timed(0, [&] {  // the first teacher reads on, its next bases run ahead together
      if (views[0]->looked_ahead().empty()) views[0]->look_ahead(text.substr(i, opt.lookahead));
      views[0]->push(c);
    });
  }
  for (const auto& v : views) r.forward_tokens.push_back(v->stats().forward_tokens);
  return r;
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

}  // namespace nexus::fusion
