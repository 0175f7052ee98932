// Reflection of plain aggregates through Boost.PFR: field names, flattening to "a.b.c" paths,
// printing, hashing and JSON, so the descriptor's fields are listed once — where they are declared.
//
// Boost 1.81's PFR has no field names (they arrived in 1.84); `field_names` uses the same
// technique PFR 1.84 does: the compiler's pretty name of a pointer to the member of a never-
// defined object.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/pfr.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "nexus/core/enum_table.hpp"

namespace nexus::reflect {

// ---- enums: each enum names its values once, in the list that declares it ----------------------

/// Names of E's values in declaration order (core/enum_table.hpp: NEXUS_ENUM).
template <class E>
inline constexpr auto enum_names = enum_table<E>::names;

template <class E>
concept named_enum = table_enum<E>;

template <named_enum E>
constexpr std::string_view to_string(E e) {
  const auto i = static_cast<std::size_t>(e);
  return i < enum_names<E>.size() ? enum_names<E>[i] : std::string_view("?");
}

template <named_enum E>
constexpr std::optional<E> parse_enum(std::string_view s) {
  for (std::size_t i = 0; i < enum_names<E>.size(); ++i)
    if (enum_names<E>[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

/// "a, b, c": for error messages that list what is supported.
template <named_enum E>
std::string enum_list() {
  std::string out;
  for (auto n : enum_names<E>) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

// ---- aggregates --------------------------------------------------------------------------------

template <class T>
concept record = std::is_class_v<T> && std::is_aggregate_v<T> && !requires {
  typename T::value_type;
};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

namespace detail {
template <class T>
struct wrapper {
  const T value;
};
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wundefined-var-template"
#endif
template <class T>
extern const wrapper<T> fake_object;  // never defined: only its members' addresses are named
template <class P>
struct pointer_box {
  P p;
};
template <auto Box>
consteval std::string_view pretty() {
  return __PRETTY_FUNCTION__;
}

// The pretty name ends in "...value.S::field)}..." (gcc) or "...value.field}]" (clang).
consteval std::string_view member_name(std::string_view s) {
  const auto start = s.find("value.");
  s = s.substr(start + 6);
  s = s.substr(0, s.find_first_of(")}"));
  const auto colon = s.rfind(':');
  return colon == std::string_view::npos ? s : s.substr(colon + 1);
}
template <class T, std::size_t I>
consteval std::string_view field_name() {
  constexpr const auto* p = &boost::pfr::get<I>(fake_object<T>.value);
  return member_name(pretty<pointer_box<decltype(p)>{p}>());
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
template <class T, std::size_t... I>
consteval auto field_names(std::index_sequence<I...>) {
  return std::array<std::string_view, sizeof...(I)>{field_name<T, I>()...};
}
}  // namespace detail

/// The names of T's fields in declaration order.
template <record T>
consteval auto field_names() {
  return detail::field_names<T>(std::make_index_sequence<boost::pfr::tuple_size_v<T>>{});
}

/// Calls f(name, field) for each field of `v` (const or not).
template <class T, class F>
requires record<std::remove_const_t<T>>
constexpr void for_each_field(T& v, F&& f) {
  constexpr auto names = field_names<std::remove_const_t<T>>();
  boost::pfr::for_each_field(v, [&](auto& field, std::size_t i) { f(names[i], field); });
}

// ---- leaves: values that are not records --------------------------------------------------------

/// Text of a leaf value: shortest round-trip numbers, enum names, lists joined by ','.
template <class V>
std::string to_text(const V& v) {
  if constexpr (std::is_same_v<V, bool>) return v ? "true" : "false";
  else if constexpr (named_enum<V>) return std::string(to_string(v));
  else if constexpr (std::is_arithmetic_v<V>) return fmt::format("{}", v);
  else if constexpr (std::is_same_v<V, std::string>) return v;
  else if constexpr (is_vector<V>::value) {
    // Runs of equal values shortened as "value×count": per-layer lists stay readable.
    std::string out;
    for (std::size_t i = 0; i < v.size();) {
      std::size_t j = i;
      while (j < v.size() && v[j] == v[i]) ++j;
      if (!out.empty()) out += ",";
      out += to_text(static_cast<typename V::value_type>(v[i]));
      if (j - i > 1) out += "×" + std::to_string(j - i);
      i = j;
    }
    return "[" + out + "]";
  } else static_assert(sizeof(V) == 0, "nexus::reflect: no text form for this field type");
}

/// Calls f("a.b.c", leaf) for every leaf of a record, depth first in declaration order.
template <record T, class F>
void for_each_leaf(const T& v, F&& f, const std::string& prefix = "") {
  for_each_field(v, [&](std::string_view name, const auto& field) {
    using V = std::remove_cvref_t<decltype(field)>;
    const std::string path = prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
    if constexpr (record<V>) for_each_leaf(field, f, path);
    else f(path, field);
  });
}

/// (path, text) of every leaf: rows of a comparison table.
template <record T>
std::vector<std::pair<std::string, std::string>> flatten(const T& v) {
  std::vector<std::pair<std::string, std::string>> rows;
  for_each_leaf(v, [&](const std::string& path, const auto& leaf) { rows.emplace_back(path, to_text(leaf)); });
  return rows;
}

/// Paths of the leaves where a and b differ.
template <record T>
std::vector<std::string> diff(const T& a, const T& b) {
  const auto fa = flatten(a), fb = flatten(b);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < fa.size(); ++i)
    if (fa[i].second != fb[i].second) out.push_back(fa[i].first);
  return out;
}

/// Hash over every leaf (vectors element-wise), stable within a process.
template <record T>
std::size_t hash(const T& v) {
  std::size_t h = 0x9e3779b97f4a7c15ull;
  auto mix = [&](std::size_t x) { h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
  auto leaf_hash = [&](const auto& leaf) {
    using V = std::remove_cvref_t<decltype(leaf)>;
    if constexpr (std::is_enum_v<V>)
      mix(std::hash<std::underlying_type_t<V>>{}(static_cast<std::underlying_type_t<V>>(leaf)));
    else mix(std::hash<V>{}(leaf));
  };
  for_each_leaf(v, [&](const std::string&, const auto& leaf) {
    using V = std::remove_cvref_t<decltype(leaf)>;
    if constexpr (is_vector<V>::value) {
      mix(leaf.size());
      for (const auto& x : leaf) leaf_hash(static_cast<typename V::value_type>(x));
    } else {
      leaf_hash(leaf);
    }
  });
  return h;
}

// ---- JSON ----------------------------------------------------------------------------------------

template <class V>
nlohmann::ordered_json to_json(const V& v) {
  if constexpr (record<V>) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for_each_field(v, [&](std::string_view name, const auto& field) { j[std::string(name)] = to_json(field); });
    return j;
  } else if constexpr (named_enum<V>) {
    return std::string(to_string(v));
  } else if constexpr (is_vector<V>::value) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (const auto& x : v) j.push_back(to_json(static_cast<typename V::value_type>(x)));
    return j;
  } else {
    return v;
  }
}

/// Reads what to_json wrote. Missing keys keep the value in `out`; a wrong type or an unknown
/// enum name throws std::invalid_argument naming the path.
template <class V>
void from_json(const nlohmann::json& j, V& out, const std::string& path = "") {
  auto bad = [&](const char* expected) {
    throw std::invalid_argument((path.empty() ? std::string("<root>") : path) + ": expected " + expected + ", got " +
                                j.dump());
  };
  if constexpr (record<V>) {
    if (!j.is_object()) bad("an object");
    for_each_field(out, [&](std::string_view name, auto& field) {
      const std::string key(name);
      if (j.contains(key)) from_json(j.at(key), field, path.empty() ? key : path + "." + key);
    });
  } else if constexpr (named_enum<V>) {
    if (!j.is_string()) bad("a name");
    const auto e = parse_enum<V>(j.get<std::string>());
    if (!e) bad(("one of " + enum_list<V>()).c_str());
    out = *e;
  } else if constexpr (is_vector<V>::value) {
    if (!j.is_array()) bad("a list");
    out.clear();
    for (std::size_t i = 0; i < j.size(); ++i) {
      typename V::value_type x{};
      from_json(j[i], x, path + "[" + std::to_string(i) + "]");
      out.push_back(x);
    }
  } else if constexpr (std::is_same_v<V, bool>) {
    if (!j.is_boolean()) bad("true or false");
    out = j.get<bool>();
  } else if constexpr (std::is_arithmetic_v<V>) {
    if (!j.is_number()) bad("a number");
    out = j.get<V>();
  } else {
    if (!j.is_string()) bad("a string");
    out = j.get<std::string>();
  }
}

}  // namespace nexus::reflect
