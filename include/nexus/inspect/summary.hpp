// What `nexus inspect` reports about one checkpoint folder: its descriptor, parameter count and
// bytes by dtype, and how its tensors bound to the architecture.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "nexus/io/checkpoint.hpp"
#include "nexus/registry/binding.hpp"
#include "nexus/registry/registry.hpp"

namespace nexus {

struct model_summary {
  std::string path;
  descriptor arch;
  std::int64_t parameters = 0;                  // elements of every weight tensor (not buffers)
  std::map<std::string, std::int64_t> bytes_by_dtype;
  std::size_t tensor_count = 0;
  registry::binding binding;
};

inline model_summary summarize(const std::filesystem::path& dir) {
  model_summary s;
  s.path = dir.string();
  const auto config = registry::read_config(dir);
  const config_reader reader(config, (dir / "config.json").string());
  const auto& fam = registry::find_family(reader);
  s.arch = registry::describe(config, reader.where());
  const checkpoint ckpt(dir);
  s.binding = registry::bind(fam, s.arch, ckpt);
  for (const auto& t : ckpt.tensors()) {
    if (std::find(s.binding.ignored.begin(), s.binding.ignored.end(), t.name) != s.binding.ignored.end()) continue;
    s.parameters += t.numel();
    s.bytes_by_dtype[std::string(name_of(t.type))] += std::int64_t(t.data.size());
    ++s.tensor_count;
  }
  return s;
}

}  // namespace nexus
