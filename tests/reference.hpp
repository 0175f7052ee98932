// Access to the reference files written by tools/fixtures/make_fixtures.py from transformers.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nexus::test {

/// tests/data: the path compiled in, or $NEXUS_TEST_DATA (test binaries carried to another machine, where the
/// source tree sits elsewhere: tools/gpu/proof.sh).
inline std::filesystem::path data_dir() {
  if (const char* e = std::getenv("NEXUS_TEST_DATA"); e && *e) return e;
  return NEXUS_TEST_DATA;
}

/// A fresh folder under /tmp, removed with everything in it when the object goes.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    char name[] = "/tmp/nexus-test-XXXXXX";
    path = ::mkdtemp(name);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() { std::filesystem::remove_all(path); }
};

/// Every folder under tests/data/<kind> that has a reference.json (kind: "configs" or "models").
inline std::vector<std::filesystem::path> reference_dirs(const std::string& kind) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(data_dir() / kind))
    if (std::filesystem::exists(e.path() / "reference.json")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// Model fixtures that carry transformers' recorded outputs (outputs.safetensors).
inline std::vector<std::filesystem::path> models_with_outputs() {
  std::vector<std::filesystem::path> out;
  for (const auto& d : reference_dirs("models"))
    if (std::filesystem::exists(d / "outputs.safetensors")) out.push_back(d);
  return out;
}

inline nlohmann::json load_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

}  // namespace nexus::test
