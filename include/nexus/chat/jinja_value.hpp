// Values of the Jinja subset that chat templates use, with Python's semantics where a template can
// see them: truthiness, equality and ordering, str() and repr() (what `{{ x }}` prints), and
// json.dumps as transformers' `tojson` filter calls it (ensure_ascii=False).
#pragma once

#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/tokenizer/utf8.hpp"

namespace nexus::jinja {

struct value;
using array = std::vector<value>;
/// A dict: insertion-ordered like Python's (tojson and iteration keep the order).
struct object {
  std::vector<std::pair<std::string, value>> items;
  bool is_namespace = false;  // namespace(): the one object `{% set ns.x = ... %}` may change
  const value* find(std::string_view key) const;
  value* find(std::string_view key);
  void set(const std::string& key, value v);
};
struct call_args;
using function = std::function<value(call_args&)>;

struct undefined_t {
  bool operator==(const undefined_t&) const = default;
};

struct value {
  std::variant<undefined_t, std::nullptr_t, bool, std::int64_t, double, std::string, std::shared_ptr<array>,
               std::shared_ptr<object>, std::shared_ptr<function>>
      v;

  value() = default;
  value(std::nullptr_t) : v(nullptr) {}
  value(bool b) : v(b) {}
  value(int i) : v(std::int64_t(i)) {}
  value(std::int64_t i) : v(i) {}
  value(double d) : v(d) {}
  value(std::string s) : v(std::move(s)) {}
  value(const char* s) : v(std::string(s)) {}
  value(array a) : v(std::make_shared<array>(std::move(a))) {}
  value(object o) : v(std::make_shared<object>(std::move(o))) {}
  value(function f) : v(std::make_shared<function>(std::move(f))) {}

  bool is_undefined() const { return std::holds_alternative<undefined_t>(v); }
  bool is_none() const { return std::holds_alternative<std::nullptr_t>(v); }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_int() const { return std::holds_alternative<std::int64_t>(v); }  // Python int (bool is not counted here)
  bool is_float() const { return std::holds_alternative<double>(v); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<array>>(v); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<object>>(v); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<function>>(v); }

  const std::string& str() const { return std::get<std::string>(v); }
  const array& arr() const { return *std::get<std::shared_ptr<array>>(v); }
  const object& obj() const { return *std::get<std::shared_ptr<object>>(v); }
  object& obj_mut() const { return *std::get<std::shared_ptr<object>>(v); }
  const function& fn() const { return *std::get<std::shared_ptr<function>>(v); }
  /// Numeric value of a bool, int or float (Python's numeric tower).
  double as_double() const { return is_float() ? std::get<double>(v) : double(as_int()); }
  std::int64_t as_int() const { return is_bool() ? std::int64_t(std::get<bool>(v)) : std::get<std::int64_t>(v); }

  /// Python truthiness; undefined is false.
  bool truthy() const {
    return std::visit(
        [](const auto& x) -> bool {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, undefined_t> || std::is_same_v<T, std::nullptr_t>) return false;
          else if constexpr (std::is_same_v<T, bool>) return x;
          else if constexpr (std::is_same_v<T, std::int64_t>) return x != 0;
          else if constexpr (std::is_same_v<T, double>) return x != 0.0;
          else if constexpr (std::is_same_v<T, std::string>) return !x.empty();
          else if constexpr (std::is_same_v<T, std::shared_ptr<array>>) return !x->empty();
          else if constexpr (std::is_same_v<T, std::shared_ptr<object>>) return !x->items.empty();
          else return true;
        },
        v);
  }

  /// Python's type name, for error messages.
  const char* type_name() const {
    constexpr const char* names[] = {"undefined", "NoneType", "bool", "int",     "float",
                                     "str",       "list",     "dict", "function"};
    return names[v.index()];
  }
};

inline const value* object::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}
inline value* object::find(std::string_view key) {
  for (auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}
inline void object::set(const std::string& key, value v) {
  if (auto* slot = find(key)) *slot = std::move(v);
  else items.emplace_back(key, std::move(v));
}

/// Positional and keyword arguments of a call.
struct call_args {
  std::vector<value> positional;
  std::vector<std::pair<std::string, value>> keyword;
  /// Argument `index` or keyword `name`, else `fallback`.
  value get(std::size_t index, std::string_view name, value fallback = {}) const {
    for (const auto& [k, v] : keyword)
      if (k == name) return v;
    return index < positional.size() ? positional[index] : fallback;
  }
};

// ---- JSON in ---------------------------------------------------------------------------------------

inline value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return nullptr;
    case nlohmann::ordered_json::value_t::boolean: return j.get<bool>();
    case nlohmann::ordered_json::value_t::number_integer: return j.get<std::int64_t>();
    case nlohmann::ordered_json::value_t::number_unsigned: return std::int64_t(j.get<std::uint64_t>());
    case nlohmann::ordered_json::value_t::number_float: return j.get<double>();
    case nlohmann::ordered_json::value_t::string: return j.get<std::string>();
    case nlohmann::ordered_json::value_t::array: {
      array a;
      for (const auto& e : j) a.push_back(from_json(e));
      return a;
    }
    case nlohmann::ordered_json::value_t::object: {
      object o;
      for (const auto& [k, e] : j.items()) o.items.emplace_back(k, from_json(e));
      return o;
    }
    case nlohmann::ordered_json::value_t::binary:
    case nlohmann::ordered_json::value_t::discarded: return {};
  }
  return {};
}

// ---- text out --------------------------------------------------------------------------------------

/// Python's repr() of a float: the shortest digits that round-trip, fixed notation for decimal
/// exponents in [-4, 16), scientific otherwise; always a '.0' or exponent so it reads as a float.
inline std::string python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // e.g. "-1.2345e+02"
  const bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  const auto e = s.find('e');
  const int exp = std::stoi(s.substr(e + 1));
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(std::size_t(-exp - 1), '0') + digits;
    } else if (std::size_t(exp) + 1 >= digits.size()) {
      out = digits + std::string(std::size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, std::size_t(exp) + 1) + "." + digits.substr(std::size_t(exp) + 1);
    }
  } else {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + (exp < 0 ? "e-" : "e+") +
          (std::abs(exp) < 10 ? "0" : "") + std::to_string(std::abs(exp));
  }
  return neg ? "-" + out : out;
}

/// Python's repr() of a str: single quotes unless the text has ' and no ".
inline std::string python_repr_string(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == q || c == '\\') out += '\\', out += char(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else out += char(c);
  }
  return out + q;
}

std::string repr(const value& v);

/// Python's str(): what `{{ x }}` prints (undefined prints nothing).
inline std::string to_str(const value& v) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, undefined_t>) return "";
        else if constexpr (std::is_same_v<T, std::string>) return x;
        else return repr(v);
      },
      v.v);
}

inline std::string repr(const value& v) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, undefined_t>) return "";
        else if constexpr (std::is_same_v<T, std::nullptr_t>) return "None";
        else if constexpr (std::is_same_v<T, bool>) return x ? "True" : "False";
        else if constexpr (std::is_same_v<T, std::int64_t>) return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) return python_float(x);
        else if constexpr (std::is_same_v<T, std::string>) return python_repr_string(x);
        else if constexpr (std::is_same_v<T, std::shared_ptr<array>>) {
          std::string out = "[";
          for (std::size_t i = 0; i < x->size(); ++i) out += (i ? ", " : "") + repr((*x)[i]);
          return out + "]";
        } else if constexpr (std::is_same_v<T, std::shared_ptr<object>>) {
          if (x->is_namespace) return "<Namespace>";
          std::string out = "{";
          for (std::size_t i = 0; i < x->items.size(); ++i)
            out += (i ? ", " : "") + python_repr_string(x->items[i].first) + ": " + repr(x->items[i].second);
          return out + "}";
        } else return "<function>";
      },
      v.v);
}

/// json.dumps(v, ensure_ascii=False, indent=indent, separators=None): ", " and ": " without indent,
/// "," and ": " with it. Returns false (and leaves `out` partial) for what JSON cannot hold.
inline bool to_json(const value& v, std::string& out, int indent = -1, int depth = 0) {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(std::size_t(indent * d), ' ');
  };
  const char* item_sep = indent < 0 ? ", " : ",";
  return std::visit(
      [&](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, undefined_t> || std::is_same_v<T, std::shared_ptr<function>>) return false;
        else if constexpr (std::is_same_v<T, std::nullptr_t>) out += "null";
        else if constexpr (std::is_same_v<T, bool>) out += x ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::int64_t>) out += std::to_string(x);
        else if constexpr (std::is_same_v<T, double>)
          out += std::isnan(x) ? "NaN" : std::isinf(x) ? (x < 0 ? "-Infinity" : "Infinity") : python_float(x);
        else if constexpr (std::is_same_v<T, std::string>) {
          out += '"';
          for (unsigned char c : x) {
            switch (c) {
              case '"': out += "\\\""; break;
              case '\\': out += "\\\\"; break;
              case '\n': out += "\\n"; break;
              case '\r': out += "\\r"; break;
              case '\t': out += "\\t"; break;
              case '\b': out += "\\b"; break;
              case '\f': out += "\\f"; break;
              default:
                if (c < 0x20) {
                  char b[8];
                  std::snprintf(b, sizeof b, "\\u%04x", c);
                  out += b;
                } else out += char(c);
            }
          }
          out += '"';
        } else if constexpr (std::is_same_v<T, std::shared_ptr<array>>) {
          if (x->empty()) return out += "[]", true;
          out += '[';
          for (std::size_t i = 0; i < x->size(); ++i) {
            if (i) out += item_sep;
            newline(depth + 1);
            if (!to_json((*x)[i], out, indent, depth + 1)) return false;
          }
          newline(depth);
          out += ']';
        } else if constexpr (std::is_same_v<T, std::shared_ptr<object>>) {
          if (x->items.empty()) return out += "{}", true;
          out += '{';
          for (std::size_t i = 0; i < x->items.size(); ++i) {
            if (i) out += item_sep;
            newline(depth + 1);
            to_json(value(x->items[i].first), out);
            out += ": ";
            if (!to_json(x->items[i].second, out, indent, depth + 1)) return false;
          }
          newline(depth);
          out += '}';
        }
        return true;
      },
      v.v);
}

// ---- comparison ------------------------------------------------------------------------------------

/// Python ==: numbers by value (True == 1), containers element-wise, different types unequal;
/// undefined equals only undefined (Jinja's Undefined.__eq__).
inline bool equal(const value& a, const value& b) {
  if (a.is_number() && b.is_number())
    return a.is_float() || b.is_float() ? a.as_double() == b.as_double() : a.as_int() == b.as_int();
  if (a.v.index() != b.v.index()) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_string()) return a.str() == b.str();
  if (a.is_array()) {
    if (a.arr().size() != b.arr().size()) return false;
    for (std::size_t i = 0; i < a.arr().size(); ++i)
      if (!equal(a.arr()[i], b.arr()[i])) return false;
    return true;
  }
  if (a.is_object()) {
    if (a.obj().items.size() != b.obj().items.size()) return false;
    for (const auto& [k, v] : a.obj().items) {
      const auto* o = b.obj().find(k);
      if (!o || !equal(v, *o)) return false;
    }
    return true;
  }
  return std::get<std::shared_ptr<function>>(a.v) == std::get<std::shared_ptr<function>>(b.v);
}

/// Python ordering (<0, 0, >0) of numbers, strings (by code point = by UTF-8 bytes) and lists;
/// nullopt where Python raises TypeError.
inline std::optional<int> compare(const value& a, const value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.str().compare(b.str()) < 0 ? -1 : a.str() == b.str() ? 0 : 1;
  if (a.is_array() && b.is_array()) {
    const auto& x = a.arr();
    const auto& y = b.arr();
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      if (equal(x[i], y[i])) continue;
      return compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return std::nullopt;
}

// ---- strings as code points ----------------------------------------------------------------------

inline std::u32string to_u32(std::string_view s) {
  std::u32string out;
  utf8::for_each_char(s, [&](std::string_view c) { out += char32_t(utf8::decode(c)); });
  return out;
}
inline std::string to_u8(std::u32string_view s) {
  std::string out;
  for (const auto c : s) utf8::append(out, std::uint32_t(c));
  return out;
}
inline bool is_space(char32_t c) { return utf8::is_python_space(std::uint32_t(c)); }
/// str.strip / lstrip / rstrip: whitespace, or the characters of `chars` when given.
inline std::string strip(std::string_view s, bool left, bool right,
                         const std::optional<std::string>& chars = std::nullopt) {
  const auto u = to_u32(s);
  const auto set = chars ? to_u32(*chars) : std::u32string();
  auto drop = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  std::size_t b = 0, e = u.size();
  if (left)
    while (b < e && drop(u[b])) ++b;
  if (right)
    while (e > b && drop(u[e - 1])) --e;
  return to_u8(std::u32string_view(u).substr(b, e - b));
}
/// Simple (one-to-one) Unicode case mapping of every character.
inline std::string map_case(std::string_view s, bool upper) {
  std::string out;
  utf8::for_each_char(s, [&](std::string_view c) {
    const auto cp = utf8proc_int32_t(utf8::decode(c));
    utf8::append(out, std::uint32_t(upper ? utf8proc_toupper(cp) : utf8proc_tolower(cp)));
  });
  return out;
}

}  // namespace nexus::jinja
