// A checkpoint read and matched to its architecture in one call: a folder's config.json (or a .gguf file's
// metadata) -> family and descriptor, the weights mapped, every tensor bound. Loaders, `nexus inspect` and the
// tests all start here.
#pragma once

#include <filesystem>

#include "nexus/io/model_cache.hpp"
#include "nexus/core/log.hpp"
#include "nexus/registry/binding.hpp"
#include "nexus/registry/registry.hpp"

namespace nexus::registry {

/// The binding's tensor views point into `weights`, which this object owns (moving it keeps them
/// valid: the maps belong to the shards, not to the checkpoint object).
struct opened_checkpoint {
  const family* fam = nullptr;
  descriptor arch;
  checkpoint weights;
  binding bound;
};

/// `name`: a Hugging Face checkpoint folder or a .gguf file, or a name io/model_cache.hpp resolves
/// (a Hugging Face id in the local cache, a file in the Nexus model cache).
inline opened_checkpoint open_checkpoint(const std::filesystem::path& name) {
  const auto path = resolve_model(name.string());
  if (is_gguf_path(path)) {
    opened_checkpoint o{nullptr, {}, checkpoint(path), {}};
    const auto& f = *o.weights.gguf_file();
    o.fam = &gguf_family(f);
    o.arch = describe(f);
    o.bound = bind(*o.fam, o.arch, o.weights);
    log::info("opened {} as {} (GGUF)", path.string(), o.arch.family);
    return o;
  }
  const auto& dir = path;
  const auto config = read_config(dir);
  const config_reader reader(config, (dir / "config.json").string());
  opened_checkpoint o{&find_family(reader), describe(config, reader.where()), checkpoint(dir), {}};
  o.bound = bind(*o.fam, o.arch, o.weights);
  log::info("opened {} as {} (config.json and safetensors)", dir.string(), o.arch.family);
  return o;
}

}  // namespace nexus::registry
