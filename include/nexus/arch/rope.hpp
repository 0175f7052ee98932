// Rotary inverse frequencies for every scaling type, with the formulas of transformers'
// modeling_rope_utils (4.57). Computed in double here; the backends round to their precision.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "nexus/arch/descriptor.hpp"

namespace nexus {

/// The RoPE settings a layer of `kind` rotates with: `p` itself, or for sliding-window layers
/// their own base and scaling where the descriptor has them (Gemma 3). Every backend picks the
/// rope of a layer through this one rule.
inline position_desc rope_for(const position_desc& p, layer_attention kind) {
  if (kind != layer_attention::sliding || p.sliding.theta == 0) return p;
  position_desc out = p;
  out.theta = p.sliding.theta;
  out.scaling = p.sliding.scaling;
  out.sliding = {};
  return out;
}

/// Whether the two kinds of layer rotate differently.
inline bool has_sliding_rope(const position_desc& p) { return p.sliding.theta != 0; }

/// inv_freq[i] for the rotary_dim / 2 rotated pairs at a sequence of `seq_len` tokens
/// (only dynamic and longrope depend on it; 0 means "at most the original context").
inline std::vector<double> rope_inv_freq(const position_desc& p, std::int64_t seq_len = 0) {
  const auto dim = p.rotary_dim;
  const auto& s = p.scaling;
  double base = p.theta;
  if (s.type == rope_scaling::dynamic && seq_len > s.original_max_positions) {
    const double ratio = s.factor * double(seq_len) / double(s.original_max_positions) - (s.factor - 1);
    base *= std::pow(ratio, double(dim) / double(dim - 2));
  }
  std::vector<double> inv(std::size_t(dim / 2));
  for (std::size_t i = 0; i < inv.size(); ++i) inv[i] = 1.0 / std::pow(base, double(2 * i) / double(dim));

  switch (s.type) {
    case rope_scaling::none:
    case rope_scaling::dynamic: break;
    case rope_scaling::linear:
      for (auto& f : inv) f /= s.factor;
      break;
    case rope_scaling::yarn: {
      const auto correction_dim = [&](double rotations) {
        return dim * std::log(double(s.original_max_positions) / (rotations * 2 * std::numbers::pi)) /
               (2 * std::log(base));
      };
      double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
      if (s.truncate) low = std::floor(low), high = std::ceil(high);
      low = std::max(low, 0.0), high = std::min(high, double(dim - 1));
      if (low == high) high += 0.001;  // avoid a zero-width ramp
      for (std::size_t i = 0; i < inv.size(); ++i) {
        const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1 - ramp;  // share kept at the original frequency
        inv[i] = inv[i] / s.factor * (1 - extrapolation) + inv[i] * extrapolation;
      }
      break;
    }
    case rope_scaling::llama3: {
      const double old_ctx = double(s.original_max_positions);
      const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
      for (auto& f : inv) {
        const double wavelen = 2 * std::numbers::pi / f;
        if (wavelen > low_wavelen) f /= s.factor;
        else if (wavelen >= high_wavelen) {
          const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          f = (1 - smooth) * f / s.factor + smooth * f;
        }
      }
      break;
    }
    case rope_scaling::longrope: {
      const auto& ext = seq_len > s.original_max_positions ? s.long_factor : s.short_factor;
      for (std::size_t i = 0; i < inv.size(); ++i) inv[i] /= ext[i];
      break;
    }
  }
  return inv;
}

}  // namespace nexus
