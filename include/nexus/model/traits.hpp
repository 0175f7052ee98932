// From a descriptor to its instantiation: traits_of, and find_instantiation with an error that
// names the trait no instantiation has.
#pragma once

#include <array>
#include <string>

#include "nexus/arch/descriptor.hpp"
#include "nexus/model/block_traits.hpp"
#include "nexus/core/error.hpp"

namespace nexus {

/// The traits of a descriptor.
constexpr block_traits traits_of(const descriptor& n) {
#define NEXUS_TRAIT_VALUE_(type, member, path, value) value,
  return {NEXUS_BLOCK_TRAITS(NEXUS_TRAIT_VALUE_)};
#undef NEXUS_TRAIT_VALUE_
}

namespace detail {
inline std::string trait_text(bool v) { return v ? "true" : "false"; }
template <reflect::named_enum E>
std::string trait_text(E v) {
  return std::string(reflect::to_string(v));
}
/// f(descriptor path, value in a, value in b) for every trait.
template <class F>
void for_each_trait(const block_traits& a, const block_traits& b, F&& f) {
#define NEXUS_TRAIT_VISIT_(type, member, path, value) f(path, a.member, b.member);
  NEXUS_BLOCK_TRAITS(NEXUS_TRAIT_VISIT_)
#undef NEXUS_TRAIT_VISIT_
}
}  // namespace detail

/// "norm.kind=rms norm.placement=pre ...".
inline std::string describe_traits(const block_traits& t) {
  std::string out;
  detail::for_each_trait(t, t, [&](const char* path, auto v, auto) {
    out += (out.empty() ? "" : " ") + std::string(path) + "=" + detail::trait_text(v);
  });
  return out;
}

/// The first runtime feature of `n` that only the CPU model runs so far (empty: none); the CUDA backend refuses
/// a descriptor that has one, naming it.
inline std::string cpu_only_feature(const descriptor& n) {
  if (n.moe.num_experts > 0) return "moe.num_experts (mixture of experts)";
  if (!n.position.unrotated_layers.empty()) return "position.unrotated_layers (layers without RoPE)";
  if (n.residual_scale != 1.0) return "residual_scale";
  return {};
}

/// Index of the instantiation for `t`, or unsupported_error naming the traits no instantiation
/// has together, relative to the closest one.
inline std::size_t find_instantiation(const block_traits& t) {
  std::size_t best = 0, best_diff = ~std::size_t(0);
  for (std::size_t i = 0; i < supported_blocks.size(); ++i) {
    if (supported_blocks[i] == t) return i;
    std::size_t diff = 0;
    detail::for_each_trait(t, supported_blocks[i], [&](const char*, auto have, auto other) { diff += have != other; });
    if (diff < best_diff) best = i, best_diff = diff;
  }
  std::string diff;
  detail::for_each_trait(t, supported_blocks[best], [&](const char* path, auto have, auto closest) {
    if (have != closest)
      diff += std::string(diff.empty() ? "" : ", ") + path + "=" + detail::trait_text(have) +
              " (closest instantiation has " + detail::trait_text(closest) + ")";
  });
  throw unsupported_error("traits", "no instantiation for " + describe_traits(t) + ": " + diff +
                                        "; add the combination to supported_blocks in nexus/model/block_traits.hpp");
}

}  // namespace nexus
