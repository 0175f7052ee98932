// The mixture kinds, listed once. A kind is one file under kinds/ (a policy struct: parameters(T),
// fit(data), consulted(params, teachers) and a `reader` that mixes along one document) plus one line
// in NEXUS_MIXTURE_KINDS below (with its #include); the enum, its names (as the bundle and the
// command line spell them) and every dispatch come from that line.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "nexus/core/enum_table.hpp"
#include "nexus/fusion/bytes/vocabulary.hpp"
#include "nexus/fusion/mixtures/kinds/entropy_gate.hpp"
#include "nexus/fusion/mixtures/kinds/fixed_share.hpp"
#include "nexus/fusion/mixtures/kinds/linear.hpp"
#include "nexus/fusion/mixtures/kinds/log_linear.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"
#include "nexus/reflect/reflect.hpp"

// X(name, policy struct)
#define NEXUS_MIXTURE_KINDS(X)          \
  X(linear, linear_mixture)             \
  X(log_linear, log_linear_mixture)     \
  X(entropy_gate, entropy_gate_mixture) \
  X(fixed_share, fixed_share_mixture)

namespace nexus::fusion {
enum class mixture_kind : std::uint8_t { NEXUS_MIXTURE_KINDS(NEXUS_ENUM_VALUE_) };
}  // namespace nexus::fusion

namespace nexus {
NEXUS_ENUM_TABLE(fusion::mixture_kind, NEXUS_MIXTURE_KINDS);
}  // namespace nexus

namespace nexus::fusion {

/// Every kind, in list order.
inline constexpr auto mixture_kinds = [] {
  std::array<mixture_kind, enum_size<mixture_kind>> all{};
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<mixture_kind>(i);
  return all;
}();

/// The policy struct of a kind.
template <mixture_kind K>
struct mixture_policy;
#define NEXUS_MIXTURE_POLICY_(name, type)     \
  template <>                                 \
  struct mixture_policy<mixture_kind::name> { \
    using policy = type;                      \
  };
NEXUS_MIXTURE_KINDS(NEXUS_MIXTURE_POLICY_)
#undef NEXUS_MIXTURE_POLICY_

/// f(Policy{}) for the policy struct of kind `k`.
template <class F>
decltype(auto) with_mixture(mixture_kind k, F&& f) {
  return visit_enum(k, [&](auto c) -> decltype(auto) { return f(typename mixture_policy<c.value>::policy{}); });
}

/// The kind named `name` (as the bundle and the command line spell it), or nullopt.
inline std::optional<mixture_kind> mixture_kind_named(std::string_view name) {
  return reflect::parse_enum<mixture_kind>(name);
}
/// "linear, log_linear, ..." (for messages).
inline std::string mixture_kind_names() { return reflect::enum_list<mixture_kind>(); }
inline std::string name_of(mixture_kind k) { return std::string(reflect::to_string(k)); }

/// Parameters a mixture of `teachers` holds (kinds/*.hpp say what they are).
inline std::int64_t mixture_parameters(mixture_kind k, std::int64_t teachers) {
  return with_mixture(k, [&](auto m) { return decltype(m)::parameters(teachers); });
}

/// The parameters of kind `k` fitted on `d`.
inline ensemble_fit fit_mixture(mixture_kind k, const ensemble_data& d) {
  return with_mixture(k, [&](auto m) { return decltype(m)::fit(d); });
}

/// A mixture read along one document: each position mixed from the teachers' distributions, each
/// outcome observed (fixed share carries its weights from byte to byte; the other kinds need no state).
class document_mixer {
 public:
  document_mixer(mixture_kind k, std::span<const double> params)
      : reader_(with_mixture(
            k, [&](auto m) { return reader(std::in_place_type<typename decltype(m)::reader>, params); })) {}

  byte_distribution mix(std::span<const byte_distribution> d) const {
    const auto s = spans(d);
    byte_distribution out{};
    std::visit([&](const auto& r) { r.mix(s, out); }, reader_);
    return out;
  }
  /// The outcome that followed the distributions `d`.
  void observe(std::span<const byte_distribution> d, std::size_t outcome) {
    const auto s = spans(d);
    std::visit([&](auto& r) { r.observe(s, outcome); }, reader_);
  }

 private:
  template <std::size_t... I>
  static auto readers(std::index_sequence<I...>)
      -> std::variant<typename mixture_policy<static_cast<mixture_kind>(I)>::policy::reader...>;
  using reader = decltype(readers(std::make_index_sequence<enum_size<mixture_kind>>{}));
  static std::vector<std::span<const double>> spans(std::span<const byte_distribution> d) {
    return {d.begin(), d.end()};
  }
  reader reader_;
};

/// The mixture of the teachers listed in `consulted` (a cascade's first stages), as a mixer of the
/// same kind over just them.
inline document_mixer consulted_mixer(mixture_kind k, std::span<const double> params,
                                      std::span<const std::size_t> consulted) {
  const auto p = with_mixture(k, [&](auto m) { return decltype(m)::consulted(params, consulted); });
  return document_mixer(k, p);
}

}  // namespace nexus::fusion
