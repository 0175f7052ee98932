// Where models are found by name. A model argument is, in this order: a path (a checkpoint folder,
// a .gguf file, or a Hugging Face cache folder `models--org--name`, read at its `main` snapshot); a
// Hugging Face repository id `org/name[@revision]` resolved in the local Hugging Face cache as
// huggingface_hub lays it out (read-only, no network); a file name in the Nexus model cache
// (${NEXUS_MODELS}, else ~/.cache/nexus/models, which tools/fetch_models.sh fills).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "nexus/core/error.hpp"
#include "nexus/core/log.hpp"

namespace nexus {

namespace detail {
inline std::filesystem::path home_dir() {
  const char* home = std::getenv("HOME");
  return home && *home ? home : ".";
}
inline const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}
}  // namespace detail

inline std::filesystem::path models_cache_dir() {
  if (const char* env = detail::env_or_null("NEXUS_MODELS")) return env;
  return detail::home_dir() / ".cache" / "nexus" / "models";
}

/// `file` in the model cache, or io_error saying how to fetch it.
inline std::filesystem::path cached_model(const std::string& file) {
  auto path = models_cache_dir() / file;
  if (!std::filesystem::is_regular_file(path))
    throw io_error(path.string(), "not in the model cache: run tools/fetch_models.sh (NEXUS_MODELS picks the folder)");
  return path;
}

/// The Hugging Face hub cache, as huggingface_hub finds it: HF_HUB_CACHE, else HF_HOME/hub, else
/// XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
inline std::filesystem::path hf_hub_cache_dir() {
  if (const char* v = detail::env_or_null("HF_HUB_CACHE")) return v;
  if (const char* v = detail::env_or_null("HF_HOME")) return std::filesystem::path(v) / "hub";
  if (const char* v = detail::env_or_null("XDG_CACHE_HOME")) return std::filesystem::path(v) / "huggingface" / "hub";
  return detail::home_dir() / ".cache" / "huggingface" / "hub";
}

/// The snapshot folder of a cached repository folder (`models--org--name`) at `revision`: a branch
/// or tag named in refs/, or a commit hash under snapshots/.
inline std::filesystem::path hf_snapshot(const std::filesystem::path& repo, const std::string& revision = "main") {
  namespace fs = std::filesystem;
  std::string commit = revision;
  if (std::ifstream ref(repo / "refs" / revision); ref) std::getline(ref, commit);
  const auto snap = repo / "snapshots" / commit;
  if (commit.empty() || commit.find('/') != std::string::npos || !fs::is_directory(snap))
    throw io_error(repo.string(),
                   "no snapshot for revision '" + revision + "' (refs/" + revision + " or snapshots/" + revision + ")");
  return snap;
}

/// The path of the model `name` names (the rules at the top of this file), or io_error naming
/// every place looked at.
inline std::filesystem::path resolve_model(std::string_view name) {
  namespace fs = std::filesystem;
  if (name.empty()) throw io_error("model", "empty model name");
  const fs::path as_path(name);
  if (fs::exists(as_path)) {
    if (fs::is_directory(as_path / "snapshots") && as_path.filename().string().starts_with("models--"))
      return hf_snapshot(as_path);
    return as_path;
  }
  std::string id(name), revision = "main";
  if (const auto at = id.find('@'); at != std::string::npos) {
    revision = id.substr(at + 1);
    id.resize(at);
  }
  const auto slash = id.find('/');
  std::string looked = as_path.string() + " (no such file or folder)";
  if (slash != std::string::npos && slash > 0 && slash + 1 < id.size() &&
      id.find('/', slash + 1) == std::string::npos && id.find("..") == std::string::npos && !revision.empty()) {
    const auto repo = hf_hub_cache_dir() / ("models--" + id.substr(0, slash) + "--" + id.substr(slash + 1));
    if (fs::is_directory(repo)) {
      auto snap = hf_snapshot(repo, revision);
      log::debug("model '{}' is {} (the Hugging Face cache)", name, snap.string());
      return snap;
    }
    looked += ", " + repo.string() + " (the Hugging Face cache; HF_HUB_CACHE or HF_HOME pick it)";
  }
  if (as_path.filename() == as_path && !name.starts_with(".")) {
    const auto cached = models_cache_dir() / as_path;
    if (fs::exists(cached)) {
      log::debug("model '{}' is {} (the Nexus model cache)", name, cached.string());
      return cached;
    }
    looked += ", " + cached.string() + " (the Nexus model cache; NEXUS_MODELS picks it)";
  }
  throw io_error(std::string(name), "no such model: looked at " + looked);
}

}  // namespace nexus
