// A fused system: the teachers of a .nexus bundle, each seen one byte at a time (bytes/), so teachers
// of different tokenizers predict the same thing, combined as the bundle's parameters say
// (parameters.hpp: mixture, cascade, router). A thin composition of small parts: scoring (score.hpp)
// runs the teachers one after another (only one need be resident: the memory budget holds), fitting
// (fit.hpp) reads development examples once, generation (generate.hpp) routes once or mixes bytes.
//
//   auto sys = nexus::fusion::load_bundle("system.nexus", {.budget = 1ull << 30});
//   auto s = sys.score(text);                  // bits per byte: each teacher, mixture, cascade, router
//   auto c = sys.run(system_mode::cascade, text);  // one mode alone, computing only what it needs
//   auto answer = sys.generate("12+34=", {.max_bytes = 16, .stop = {"\n"}});
#pragma once

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/fusion/system/fit.hpp"
#include "nexus/fusion/system/generate.hpp"

namespace nexus::fusion {

struct system_options {
  std::uint64_t budget = 0;  // most bytes of teacher weights resident at once; 0: the bundle's budget
  cpu_options cpu = {};
};

class fused_system {
 public:
  explicit fused_system(const std::filesystem::path& bundle, system_options opt = {})
      : bundle_(bundle),
        teachers_(teacher_paths(bundle_), opt.budget ? opt.budget : bundle_.manifest().budget_bytes, opt.cpu),
        p_(read_parameters(bundle_, teachers_)) {}

  const bundle_manifest& manifest() const noexcept { return bundle_.manifest(); }
  teacher_set& teachers() noexcept { return teachers_; }
  const system_parameters& parameters() const noexcept { return p_; }
  mixture_kind kind() const noexcept { return p_.kind; }
  const std::vector<double>& weights() const noexcept { return p_.weights; }
  const std::optional<router_model>& router() const noexcept { return p_.router; }
  const std::optional<std::vector<double>>& cascade_thresholds() const noexcept { return p_.thresholds; }
  const std::vector<std::size_t>& cascade_order() const noexcept { return p_.order; }
  void set_mixture(mixture_kind k, std::vector<double> w) { p_.set_mixture(k, std::move(w), teachers_.size()); }

  /// The mixture of one position's teacher distributions (at a document's start, for fixed share).
  byte_distribution mix(std::span<const byte_distribution> d) const { return p_.mixer().mix(d); }
  /// The mixture for reading one document from its start.
  document_mixer mixer() const { return p_.mixer(); }
  /// The cascade's mixer of its first teachers (parameters.hpp).
  subset_mixer consulted_mixer() const { return p_.cascade_mixer(); }

  /// Every teacher's byte-level distributions over `text`, one teacher resident at a time: [teacher][position].
  system_distributions distributions(std::string_view text, std::vector<double>* seconds = nullptr,
                                     std::vector<byte_level_stats>* stats = nullptr) {
    return teacher_distributions(teachers_, text, seconds, stats);
  }
  /// The router's features of `prompt` (router.hpp), read by the feature teacher.
  std::vector<float> features(std::string_view prompt, std::int64_t prefix_bytes) {
    const auto f = p_.feature_teacher;
    return router_features_of(teachers_.get(f), teachers_.tok(f), prompt, prefix_bytes);
  }
  /// The teacher the router sends `prompt` to (requires a router; a constant one runs no teacher).
  std::size_t route(std::string_view prompt) {
    if (!p_.router)
      throw usage_error("route", bundle_.path().string() + " has no router (fit one: bundle create --fit)");
    return route_prompt(teachers_, p_, prompt);
  }

  /// One mode over `text`, computing only what it needs (score.hpp): the mixture reads every teacher,
  /// the cascade a later teacher only where reached, the router only the teacher it picks.
  mode_run run(system_mode mode, std::string_view text) {
    if (text.empty()) throw usage_error("score", "empty text");
    if (!utf8::valid(text)) throw usage_error("score", "text is not valid UTF-8");
    switch (mode) {
      case system_mode::mixture: return run_mixture(teachers_, p_, text);
      case system_mode::cascade: return run_cascade(teachers_, p_, text);  // each says when the system lacks it
      case system_mode::router: return run_router(teachers_, p_, text);
      case system_mode::automatic: return run(p_.router ? system_mode::router : system_mode::mixture, text);
    }
    throw usage_error("score", "unknown mode");
  }

  /// A mode's run over `bytes` bytes as JSON (what `nexus score --mode --json` prints and Python's
  /// System.score(mode=) returns): bits_per_byte, seconds, bytes_per_second; for a cascade its order
  /// and escalated share, for a router the teacher routed to; per teacher (by name) bytes read and
  /// decided, tokens run and seconds.
  nlohmann::ordered_json report(system_mode mode, const mode_run& r, std::size_t bytes) const {
    const auto& names = manifest().teachers;
    nlohmann::ordered_json j;
    j["bits_per_byte"] = r.nats / (std::log(2.0) * double(bytes));
    j["seconds"] = r.seconds;
    j["bytes_per_second"] = double(bytes) / r.seconds;
    if (mode == system_mode::cascade) {
      j["order"] = p_.order;
      j["escalated_share"] = double(r.escalated) / double(bytes);
    }
    if (r.routed) j["routed"] = names[*r.routed].name;
    auto t = nlohmann::ordered_json::array();
    for (std::size_t k = 0; k < r.teachers.size(); ++k)
      t.push_back({{"name", names[k].name},
                   {"bytes_read", r.teachers[k].bytes_read},
                   {"bytes_decided", r.teachers[k].bytes_decided},
                   {"forward_tokens", r.teachers[k].forward_tokens},
                   {"seconds", r.teachers[k].seconds}});
    j["teachers"] = std::move(t);
    return j;
  }

  /// Bits per byte of `text` (valid UTF-8, not empty) under each teacher, the mixture, and the
  /// cascade and router where the bundle has them.
  system_score score(std::string_view text) {
    if (text.empty()) throw usage_error("score", "empty text");
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> secs;
    std::vector<byte_level_stats> stats;
    const auto n = score_distributions(distributions(text, &secs, &stats), text, p_);
    const double to_bits = 1.0 / (std::log(2.0) * double(text.size()));
    system_score s;
    s.bytes = text.size();
    s.mixture = name_of(p_.kind);
    for (std::size_t t = 0; t < teachers_.size(); ++t)
      s.teachers.push_back({manifest().teachers[t].name, n.teachers[t] * to_bits, secs[t], stats[t].forward_tokens});
    s.bits_per_byte = n.mixture * to_bits;
    if (n.cascade) s.cascade_bits_per_byte = *n.cascade * to_bits, s.cascade_escalated = n.escalated / double(s.bytes);
    if (p_.router) s.routed_teacher = route(text);
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
  }

  /// Reads development examples once (fit.hpp); fit() then fits any mixture kind from it.
  development_set collect(const std::vector<dev_example>& examples, const system_fit_options& opt = {}) {
    return collect_development(teachers_, p_, examples, opt);
  }
  /// The sha256 of each teacher, in bundle order (what a development cache is checked against).
  std::vector<std::string> teacher_digests() const { return fusion::teacher_digests(manifest()); }
  /// Fits the mixture (kind `opt.kind`), the cascade and the router; the system keeps them (save() writes them).
  system_fit fit(const development_set& dev, const system_fit_options& opt = {}) {
    return fit_parameters(dev, p_, opt);
  }
  system_fit fit(const std::vector<dev_example>& examples, const system_fit_options& opt = {}) {
    return fit(collect(examples, opt), opt);
  }
  /// Fits on `examples` and writes the parameters into the bundle at `path` (this system's, or a copy
  /// of it) and the development cache beside it (development.hpp), for a teacher added later.
  system_fit fit_into(const std::filesystem::path& path, const std::vector<dev_example>& examples,
                      const system_fit_options& opt = {}) {
    const auto dev = collect(examples, opt);
    auto f = fit(dev, opt);
    save(path);
    save_development(development_path(path), dev, teacher_digests());
    return f;
  }
  /// Plain development documents: each split into its first `opt.prefix_bytes` bytes and the rest.
  system_fit fit(const std::vector<std::string>& documents, const system_fit_options& opt = {}) {
    std::vector<dev_example> ex;
    for (const auto& doc : documents) ex.push_back(split_document(doc, opt.prefix_bytes));
    return fit(ex, opt);
  }

  /// Greedy continuation of `prompt` (generate.hpp): routed once to one teacher, or byte by byte.
  std::string generate(std::string_view prompt, const system_generate_options& opt = {}) {
    if (!utf8::valid(prompt)) throw usage_error("generate", "prompt is not valid UTF-8");
    auto mode = opt.mode;
    if (mode == system_mode::automatic) mode = p_.router ? system_mode::router : system_mode::mixture;
    if (mode == system_mode::cascade && !p_.thresholds)
      throw usage_error("generate", bundle_.path().string() + " has no cascade (fit one: bundle create --fit)");
    if (mode == system_mode::router) {
      const auto t = route(prompt);
      if (opt.on_route) opt.on_route(t);
      return generate_alone(teachers_.get(t), teachers_.tok(t), prompt, opt);
    }
    std::vector<std::size_t> used = p_.order;  // the cascade reads its order; the mixture every teacher
    if (mode == system_mode::mixture)
      for (std::size_t t = 0; t < used.size(); ++t) used[t] = t;
    std::uint64_t need = 0;
    for (const auto t : used) need += teachers_.info(t).weight_bytes;
    if (teachers_.budget() && need > teachers_.budget())
      throw budget_error(bundle_.path().string(), "generation needs " + std::to_string(used.size()) +
                                                      " teachers resident (" + format_bytes(need) +
                                                      "), more than the budget of " + format_bytes(teachers_.budget()));
    return generate_bytes(teachers_, p_, used, mode == system_mode::cascade, prompt, opt);
  }

  /// Rewrites the bundle at `path` (this system's, or a copy of it) with the system's parameters.
  void save(const std::filesystem::path& path) const { write_parameters(path, p_, teachers_.size()); }

 private:
  static std::vector<std::filesystem::path> teacher_paths(const bundle_file& b) {
    std::vector<std::filesystem::path> paths;
    for (std::size_t i = 0; i < b.manifest().teachers.size(); ++i) paths.push_back(resolve_teacher(b, i));
    return paths;
  }

  bundle_file bundle_;
  teacher_set teachers_;
  system_parameters p_;
};

/// Opens a bundle and its teachers (checked by sha256) as one system.
inline fused_system load_bundle(const std::filesystem::path& path, system_options opt = {}) {
  return fused_system(path, opt);
}

}  // namespace nexus::fusion
