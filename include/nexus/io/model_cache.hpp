// The folder where downloaded models live: ${NEXUS_MODELS}, else ~/.cache/nexus/models.
// tools/fetch_models.sh fills it; the demo and the real-model tests read from it.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "nexus/core/error.hpp"

namespace nexus {

inline std::filesystem::path models_cache_dir() {
  if (const char* env = std::getenv("NEXUS_MODELS"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : ".") / ".cache" / "nexus" / "models";
}

/// `file` in the model cache, or io_error saying how to fetch it.
inline std::filesystem::path cached_model(const std::string& file) {
  auto path = models_cache_dir() / file;
  if (!std::filesystem::is_regular_file(path))
    throw io_error(path.string(), "not in the model cache: run tools/fetch_models.sh (NEXUS_MODELS picks the folder)");
  return path;
}

}  // namespace nexus
