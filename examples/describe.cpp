// Smallest use of Nexus: a checkpoint folder in, its architecture and weights out.
//   describe tests/data/models/qwen3
#include <nexus/io/checkpoint.hpp>
#include <nexus/registry/binding.hpp>
#include <nexus/registry/registry.hpp>

#include <fmt/format.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: describe CHECKPOINT_DIR\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    const auto config = nexus::registry::read_config(dir);
    const auto& family = nexus::registry::find_family(nexus::config_reader(config, "config.json"));
    const nexus::descriptor n = nexus::registry::describe(dir);
    fmt::print("{}\n", nexus::reflect::to_json(n).dump(2));

    const nexus::checkpoint weights(dir);  // memory-mapped, zero copy
    const auto binding = nexus::registry::bind(family, n, weights);
    for (const auto& t : binding.tensors)
      fmt::print("{:<50} -> {}\n", t.tensor.name, fmt::join(t.expected.targets, ", "));
    return binding.complete() ? 0 : 1;
  } catch (const nexus::error& e) {
    fmt::print(stderr, "describe: {}\n", e.what());
    return 1;
  }
}
