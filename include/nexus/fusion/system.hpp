// A fused system: the teachers of a .nexus bundle, each seen one byte at a time (byte_level.hpp), so
// teachers of different tokenizers predict the same thing, combined as the bundle's mixture says
// (ensemble.hpp). Scoring runs the teachers one after another (only one need be resident: the memory
// budget holds); generation needs all of them at once and streams valid UTF-8, each teacher's KV
// cache advancing only as its tokens are decided.
//
//   auto sys = nexus::fusion::load_bundle("system.nexus", {.budget = 1ull << 30});
//   auto s = sys.score(text);                  // bits per byte: each teacher and the mixture
//   auto answer = sys.generate("12+34=", {.max_bytes = 16, .stop = {"\n"}});
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bundle.hpp"
#include "nexus/fusion/byte_level.hpp"
#include "nexus/fusion/ensemble.hpp"
#include "nexus/fusion/teacher_set.hpp"

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
  for (const char c : text) {
    t.push(static_cast<unsigned char>(c));
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
  double bits_per_byte = 0;  // of the mixture
  std::string mixture;       // its kind
  std::size_t bytes = 0;
  double seconds = 0;  // the whole score, teachers included
};

struct system_generate_options {
  std::size_t max_bytes = 256;
  std::vector<std::string> stop;                       // stop once the text ends with one of these (kept)
  std::function<void(std::string_view)> on_text = {};  // streamed complete UTF-8 characters
};

class fused_system {
 public:
  explicit fused_system(const std::filesystem::path& bundle, system_options opt = {})
      : bundle_(bundle),
        teachers_(teacher_paths(bundle_), opt.budget ? opt.budget : bundle_.manifest().budget_bytes, opt.cpu) {
    const auto& m = bundle_.manifest();
    if (m.mixture) {
      kind_ = m.mixture->kind;
      const auto w = bundle_.parameter(m.mixture->weights);
      weights_.assign(w.begin(), w.end());
    } else {
      weights_.assign(teachers_.size(), 1.0 / double(teachers_.size()));  // no fit yet: an even linear mixture
    }
  }

  const bundle_manifest& manifest() const noexcept { return bundle_.manifest(); }
  teacher_set& teachers() noexcept { return teachers_; }
  mixture_kind kind() const noexcept { return kind_; }
  const std::vector<double>& weights() const noexcept { return weights_; }
  void set_mixture(mixture_kind k, std::vector<double> w) {
    check_mixture(k, w);
    kind_ = k, weights_ = std::move(w);
  }

  /// The mixture of one position's teacher distributions.
  byte_distribution mix(std::span<const byte_distribution> d) const {
    std::vector<std::span<const double>> s(d.begin(), d.end());
    byte_distribution out{};
    switch (kind_) {
      case mixture_kind::linear: mix_linear(s, weights_, out); break;
      case mixture_kind::log_linear: mix_log_linear(s, weights_, out); break;
      case mixture_kind::entropy_gate: mix_entropy_gate(s, weights_.at(0), out); break;
    }
    return out;
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

  /// Bits per byte of `text` (valid UTF-8, not empty) under each teacher and under the mixture.
  system_score score(std::string_view text) {
    if (text.empty()) throw usage_error("score", "empty text");
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> secs;
    const auto all = distributions(text, &secs);
    system_score s;
    s.bytes = text.size();
    s.mixture = detail::name_of(kind_);
    std::vector<double> nats(teachers_.size(), 0.0);
    double mixed = 0;
    std::vector<byte_distribution> at(teachers_.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      for (std::size_t t = 0; t < teachers_.size(); ++t) {
        at[t] = all[t][i];
        nats[t] -= std::log(at[t][c]);
      }
      mixed -= std::log(mix(at)[c]);
    }
    const double to_bits = 1.0 / (std::log(2.0) * double(text.size()));
    for (std::size_t t = 0; t < teachers_.size(); ++t)
      s.teachers.push_back({manifest().teachers[t].name, nats[t] * to_bits, secs[t]});
    s.bits_per_byte = mixed * to_bits;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
  }

  /// Fits the weights of a mixture of kind `k` on development documents (each read from its start,
  /// so none need fit a teacher's context with the others); returns the fit (set_mixture keeps it).
  ensemble_fit fit(const std::vector<std::string>& documents, mixture_kind k) {
    ensemble_data d{std::int64_t(teachers_.size()), std::int64_t(end_of_text + 1), {}, {}};
    std::vector<double> row;
    for (const auto& doc : documents) {
      if (doc.empty()) continue;
      const auto all = distributions(doc);
      for (std::size_t i = 0; i < doc.size(); ++i) {
        row.clear();
        for (const auto& t : all) row.insert(row.end(), t[i].begin(), t[i].end());
        d.add(row, static_cast<unsigned char>(doc[i]));
      }
    }
    if (d.positions() == 0) throw usage_error("fit", "empty development text");
    switch (k) {
      case mixture_kind::linear: return fit_linear_mixture(d);
      case mixture_kind::log_linear: return fit_log_linear(d);
      case mixture_kind::entropy_gate: return fit_entropy_gate(d);
    }
    throw usage_error("fit", "unknown mixture kind");
  }
  ensemble_fit fit(std::string_view dev_text, mixture_kind k) {
    return fit(std::vector<std::string>{std::string(dev_text)}, k);
  }

  /// Greedy byte-level continuation of `prompt` under the mixture; every teacher resident at once.
  std::string generate(std::string_view prompt, const system_generate_options& opt = {}) {
    std::uint64_t need = 0;
    for (std::size_t t = 0; t < teachers_.size(); ++t) need += teachers_.info(t).weight_bytes;
    if (teachers_.budget() && need > teachers_.budget())
      throw budget_error(bundle_.path().string(), "generation needs every teacher resident (" + format_bytes(need) +
                                                      "), more than the budget of " + format_bytes(teachers_.budget()));
    if (!utf8::valid(prompt)) throw usage_error("generate", "prompt is not valid UTF-8");
    std::vector<std::unique_ptr<byte_level_teacher>> views;
    for (std::size_t t = 0; t < teachers_.size(); ++t) {
      byte_level_options o;
      o.capacity = std::int64_t(prompt.size() + opt.max_bytes) + 16;
      views.push_back(std::make_unique<byte_level_teacher>(teachers_.get(t), teachers_.tok(t), o));
    }
    auto push = [&](unsigned char c) {
      for (auto& v : views) v->push(c);
    };
    for (const char c : prompt) push(static_cast<unsigned char>(c));
    std::string out, pending;  // pending: bytes of a character not yet complete
    std::vector<byte_distribution> at(views.size());
    while (out.size() + pending.size() < opt.max_bytes) {
      for (std::size_t t = 0; t < views.size(); ++t) at[t] = views[t]->distribution();
      const auto p = mix(at);
      // The most likely outcome that keeps the text valid UTF-8 and that every teacher can follow.
      std::size_t best = end_of_text;
      double best_p = p[end_of_text];
      const std::string so_far = std::string(prompt) + out + pending;
      for (std::size_t b = 0; b < end_of_text; ++b) {
        if (!(p[b] > best_p)) continue;
        bool ok = true;
        for (const auto& d : at) ok = ok && d[b] > 0;
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
      for (const auto& s : opt.stop) stop = stop || (!s.empty() && out.size() >= s.size() && out.ends_with(s));
      if (stop) break;
    }
    return out;
  }

 private:
  static std::vector<std::filesystem::path> teacher_paths(const bundle_file& b) {
    std::vector<std::filesystem::path> paths;
    for (std::size_t i = 0; i < b.manifest().teachers.size(); ++i) paths.push_back(resolve_teacher(b, i));
    return paths;
  }
  void check_mixture(mixture_kind k, const std::vector<double>& w) const {
    const auto want = k == mixture_kind::entropy_gate ? std::size_t(1) : teachers_.size();
    if (w.size() != want)
      throw usage_error("mixture", std::to_string(w.size()) + " weights for a " + detail::name_of(k) + " mixture of " +
                                       std::to_string(teachers_.size()) + " teachers (" + std::to_string(want) +
                                       " needed)");
  }

  bundle_file bundle_;
  teacher_set teachers_;
  mixture_kind kind_ = mixture_kind::linear;
  std::vector<double> weights_;
};

/// Opens a bundle and its teachers (checked by sha256) as one system.
inline fused_system load_bundle(const std::filesystem::path& path, system_options opt = {}) {
  return fused_system(path, opt);
}

/// Rewrites the bundle at `path` with `m`'s mixture (weights as an F32 tensor "mixture.weights"),
/// keeping every other tensor. Written beside it and renamed: a reader never sees a partial file.
inline void save_mixture(const std::filesystem::path& path, mixture_kind k, std::span<const double> weights) {
  bundle_manifest m;
  std::vector<tensor_to_write> tensors;
  std::vector<float> w(weights.begin(), weights.end());
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  {
    const bundle_file b(path);
    m = b.manifest();
    for (const auto& name : b.tensors().names())
      if (name != "mixture.weights") {
        const auto v = b.tensors().tensor(name);
        tensors.push_back({name, v.type, v.shape, v.data});
      }
    m.mixture = bundle_mixture{k, "mixture.weights"};
    tensors.push_back({"mixture.weights", dtype::f32, {std::int64_t(w.size())}, std::as_bytes(std::span(w))});
    write_bundle(tmp, m, tensors);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace nexus::fusion
