// From a descriptor to its instantiation: traits_of, and find_instantiation with an error that
// names the trait no instantiation has.
#pragma once

#include <array>
#include <string>

#include "nexus/arch/descriptor.hpp"
#include "nexus/model/block_traits.hpp"
#include "nexus/core/error.hpp"

namespace nexus {

/// The traits of a descriptor. Rope style is fixed to neox where positions are not rotary, so
/// families without RoPE map to one instantiation.
constexpr block_traits traits_of(const descriptor& n) {
  return {n.norm.kind, n.norm.placement, n.position.kind,
          n.position.kind == position_kind::rope ? n.position.style : rope_style::neox,
          n.mlp.gated, n.mlp.act, n.residual};
}

inline std::string describe_traits(const block_traits& t) {
  using reflect::to_string;
  return "norm.kind=" + std::string(to_string(t.norm)) + " norm.placement=" + std::string(to_string(t.placement)) +
         " position.kind=" + std::string(to_string(t.position)) + " position.style=" + std::string(to_string(t.rope)) +
         " mlp.gated=" + (t.gated ? "true" : "false") + " mlp.act=" + std::string(to_string(t.act)) +
         " residual=" + std::string(to_string(t.residual));
}

/// Index of the instantiation for `t`, or unsupported_error naming the traits no instantiation
/// has together, relative to the closest one.
inline std::size_t find_instantiation(const block_traits& t) {
  std::size_t best = 0, best_diff = 99;
  for (std::size_t i = 0; i < supported_blocks.size(); ++i) {
    const auto& s = supported_blocks[i];
    if (s == t) return i;
    const std::size_t diff = (s.norm != t.norm) + (s.placement != t.placement) + (s.position != t.position) +
                             (s.rope != t.rope) + (s.gated != t.gated) + (s.act != t.act) + (s.residual != t.residual);
    if (diff < best_diff) best = i, best_diff = diff;
  }
  const auto& s = supported_blocks[best];
  std::string diff;
  auto note = [&](bool differs, const char* name, std::string_view have, std::string_view closest) {
    if (differs) diff += std::string(diff.empty() ? "" : ", ") + name + "=" + std::string(have) + " (closest instantiation has " + std::string(closest) + ")";
  };
  using reflect::to_string;
  note(s.norm != t.norm, "norm.kind", to_string(t.norm), to_string(s.norm));
  note(s.placement != t.placement, "norm.placement", to_string(t.placement), to_string(s.placement));
  note(s.position != t.position, "position.kind", to_string(t.position), to_string(s.position));
  note(s.rope != t.rope, "position.style", to_string(t.rope), to_string(s.rope));
  note(s.gated != t.gated, "mlp.gated", t.gated ? "true" : "false", s.gated ? "true" : "false");
  note(s.act != t.act, "mlp.act", to_string(t.act), to_string(s.act));
  note(s.residual != t.residual, "residual", to_string(t.residual), to_string(s.residual));
  throw unsupported_error("traits", "no instantiation for " + describe_traits(t) + ": " + diff +
                                        "; add the combination to supported_blocks in nexus/model/traits.hpp");
}

}  // namespace nexus
