// Comparing our outputs with a reference implementation's, with the project's parity bounds:
// max |Δ| ≤ 1e-4 · max(1, max |ref|) and NMSE = Σ(Δ²) / Σ(ref²) ≤ 1e-8 (fp32).
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "nexus/io/checkpoint.hpp"
#include "nexus/model/weights.hpp"

namespace nexus {

struct parity_bounds {
  double rel_max_abs = 1e-4;
  double nmse = 1e-8;
};

struct parity_stats {
  double max_abs = 0;  // max |ours − ref|
  double max_ref = 0;  // max |ref|
  double nmse = 0;
  bool within(const parity_bounds& b = {}) const {
    return max_abs <= b.rel_max_abs * std::max(1.0, max_ref) && nmse <= b.nmse;
  }
};

inline parity_stats compare(std::span<const float> ours, std::span<const float> ref) {
  parity_stats s;
  if (ours.size() != ref.size()) {
    s.max_abs = s.nmse = INFINITY;
    return s;
  }
  double err = 0, energy = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = double(ours[i]) - double(ref[i]);
    s.max_abs = std::max(s.max_abs, std::abs(d));
    s.max_ref = std::max(s.max_ref, std::abs(double(ref[i])));
    err += d * d;
    energy += double(ref[i]) * double(ref[i]);
  }
  if (!std::isfinite(err)) s.max_abs = s.nmse = INFINITY;
  else s.nmse = energy > 0 ? err / energy : err;
  return s;
}

/// A tensor of a reference file as fp32 (or int64 ids as int32).
inline std::vector<float> reference_floats(const checkpoint& ref, const std::string& name) {
  return stored_view(ref.tensor(name)).to_f32().data;
}
inline std::vector<std::int32_t> reference_ids(const checkpoint& ref, const std::string& name) {
  const auto t = ref.tensor(name);
  if (t.type != dtype::i64) throw checkpoint_error(name, "expected I64 token ids");
  std::vector<std::int32_t> out(std::size_t(t.numel()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::int64_t v;
    std::memcpy(&v, t.data.data() + 8 * i, 8);
    out[i] = static_cast<std::int32_t>(v);
  }
  return out;
}

struct parity_row {
  std::string tensor;  // "seq0.layer1", "seq2.logits", "seq1.greedy"
  parity_stats stats;  // for greedy rows: max_abs 0 when identical, 1 when not
  bool ok = false;
};

struct parity_report {
  std::vector<parity_row> rows;
  int sequences = 0;
  bool ok() const {
    return std::all_of(rows.begin(), rows.end(), [](const auto& r) { return r.ok; });
  }
  /// Largest max |Δ| over the logits rows (the headline number).
  double worst_logits() const {
    double w = 0;
    for (const auto& r : rows)
      if (r.tensor.ends_with(".logits")) w = std::max(w, r.stats.max_abs);
    return w;
  }
};

}  // namespace nexus
