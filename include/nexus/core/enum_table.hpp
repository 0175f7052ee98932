// Enums declared from one X-macro list: the enum, the printable name of each value and the
// dispatch from a runtime value to a compile-time one all come from the same line, so a new value
// cannot leave a name table or a kernel switch behind. No dependencies beyond the standard library
// and the error types: CUDA translation units include it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "nexus/core/error.hpp"

namespace nexus {

/// The names of an enum's values in declaration order; specialised by NEXUS_ENUM.
template <class E>
struct enum_table;

template <class E>
concept table_enum = std::is_enum_v<E> && requires {
  enum_table<E>::names;
};

#define NEXUS_ENUM_VALUE_(name, ...) name,
#define NEXUS_ENUM_NAME_(name, ...) std::string_view(#name),

/// enum_table<E> for an enum declared from the same list, values 0, 1, 2, ... in list order:
///   #define NEXUS_COLOURS(X) X(red) X(green)       (X(name, ...): extra columns are the list's own)
///   enum class colour : std::uint8_t { NEXUS_COLOURS(NEXUS_ENUM_VALUE_) };
///   NEXUS_ENUM_TABLE(colour, NEXUS_COLOURS);
/// (The `enum class` line is written out, not generated, so that a search for it finds it.)
#define NEXUS_ENUM_TABLE(E, LIST)                              \
  template <>                                                  \
  struct enum_table<E> {                                       \
    static constexpr std::array names{LIST(NEXUS_ENUM_NAME_)}; \
  }

template <table_enum E>
inline constexpr std::size_t enum_size = enum_table<E>::names.size();

namespace detail {
template <class E, class F, std::size_t... I>
decltype(auto) visit_enum(E v, F& f, std::index_sequence<I...>) {
  // static_cast<E>(0), not E{}: nvcc's stub generator mis-spells a kernel argument first seen as E{}.
  using result = decltype(f(std::integral_constant<E, static_cast<E>(0)>{}));
  using call = result (*)(F&);
  static constexpr call table[] = {
      +[](F& g) -> result { return g(std::integral_constant<E, static_cast<E>(I)>{}); }...};
  const auto i = static_cast<std::size_t>(v);
  if (i >= sizeof...(I))
    throw usage_error("enum", "value " + std::to_string(i) + " is not one of the " + std::to_string(sizeof...(I)) +
                                  " declared values");
  return table[i](f);
}
}  // namespace detail

/// f(std::integral_constant<E, v>{}): the runtime value as a compile-time one, for every value of
/// the list. Backends dispatch kernels through it instead of a hand-written switch.
template <table_enum E, class F>
decltype(auto) visit_enum(E v, F&& f) {
  return detail::visit_enum(v, f, std::make_index_sequence<enum_size<E>>{});
}

}  // namespace nexus
