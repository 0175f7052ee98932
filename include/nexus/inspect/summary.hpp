// What `nexus inspect` reports about one checkpoint (folder or .gguf file): its descriptor, parameter count and
// bytes by dtype (GGUF: by block format), and how its tensors bound to the architecture.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "nexus/registry/open.hpp"

namespace nexus {

struct model_summary {
  std::string path;
  registry::opened_checkpoint source;  // descriptor, mapped weights, binding
  std::int64_t parameters = 0;         // elements of every weight tensor (not buffers)
  std::map<std::string, std::int64_t> bytes_by_dtype;
  std::size_t tensor_count = 0;
};

inline model_summary summarize(const std::filesystem::path& dir) {
  model_summary s{dir.string(), registry::open_checkpoint(dir), 0, {}, 0};
  const auto& ignored = s.source.bound.ignored;
  for (const auto& t : s.source.weights.tensors()) {
    if (std::find(ignored.begin(), ignored.end(), t.name) != ignored.end()) continue;
    s.parameters += t.numel();
    s.bytes_by_dtype[std::string(t.ggml_type ? gguf::name_of(*t.ggml_type) : name_of(t.type))] +=
        std::int64_t(t.data.size());
    ++s.tensor_count;
  }
  return s;
}

}  // namespace nexus
