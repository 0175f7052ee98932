// Typed access to config.json fields with the semantics of transformers' config classes:
// an absent key takes the class default, an explicit `null` is Python's None (which for some
// fields differs from the default: Mistral's `"sliding_window": null` turns the window off).
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"

namespace nexus {

class config_reader {
 public:
  config_reader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) throw config_error(where_, "config must be a JSON object");
  }

  const nlohmann::json& json() const noexcept { return j_; }
  const std::string& where() const noexcept { return where_; }
  bool has(const std::string& key) const { return j_.contains(key); }
  bool is_null(const std::string& key) const { return j_.contains(key) && j_.at(key).is_null(); }

  /// Absent: `dflt`. null: nullopt. Otherwise the value, which must have type T.
  template <class T>
  std::optional<T> field(const std::string& key, std::optional<T> dflt = std::nullopt) const {
    if (!j_.contains(key)) return dflt;
    return convert<T>(j_.at(key), key);
  }
  /// Absent or null: `dflt`.
  template <class T>
  T get(const std::string& key, T dflt) const {
    return field<T>(key).value_or(dflt);
  }
  /// Must be present and non-null.
  template <class T>
  T require(const std::string& key) const {
    if (!j_.contains(key) || j_.at(key).is_null()) fail(key, "is required");
    return *field<T>(key);
  }

  /// A field that transformers writes under more than one name (a config class's attribute_map:
  /// Qwen3-MoE's `num_experts` is saved as `num_local_experts` by transformers 5). Must be present
  /// under at least one of `keys`, and the same under each; never defaulted (it sizes tensors).
  template <class T>
  T require_any(std::initializer_list<const char*> keys) const {
    std::optional<T> value;
    std::string names, first;
    for (const char* key : keys) {
      names += (names.empty() ? "'" : " or '") + std::string(key) + "'";
      if (!j_.contains(key) || j_.at(key).is_null()) continue;
      const T v = *field<T>(key);
      if (value && *value != v) fail(key, "disagrees with '" + first + "' (both name the same setting)");
      if (!value) first = key;
      value = v;
    }
    if (!value) throw config_error(where_, "field " + names + " is required");
    return *value;
  }

  /// A field nested in an object field, e.g. rope_scaling.factor: errors name the full path.
  config_reader sub(const std::string& key) const {
    if (!j_.contains(key) || !j_.at(key).is_object()) fail(key, "must be an object");
    return config_reader(j_.at(key), where_ + ": " + key);
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw config_error(where_, "field '" + key + "' " + what);
  }
  [[noreturn]] void unsupported(const std::string& key, const std::string& value, const std::string& supported) const {
    throw unsupported_error(where_,
                            "field '" + key + "' = " + value + " is not supported (supported: " + supported + ")");
  }

 private:
  template <class T>
  std::optional<T> convert(const nlohmann::json& v, const std::string& key) const {
    if (v.is_null()) return std::nullopt;
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
      return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) fail(key, "must be an integer, got " + v.dump());
      return v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
      const T x = v.get<T>();
      if (!std::isfinite(x)) fail(key, "must be finite");
      return x;
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
      return v.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      if (!v.is_array()) fail(key, "must be a list of numbers, got " + v.dump());
      std::vector<double> out;
      for (const auto& x : v) {
        if (!x.is_number()) fail(key, "must be a list of numbers, got " + x.dump() + " inside");
        out.push_back(x.get<double>());
      }
      return out;
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (!v.is_array()) fail(key, "must be a list of strings, got " + v.dump());
      std::vector<std::string> out;
      for (const auto& x : v) {
        if (!x.is_string()) fail(key, "must be a list of strings, got " + x.dump() + " inside");
        out.push_back(x.get<std::string>());
      }
      return out;
    } else {
      static_assert(sizeof(T) == 0, "config_reader: unsupported field type");
    }
  }

  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace nexus
