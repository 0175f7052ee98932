// Smallest use of Nexus: a checkpoint folder in, its architecture and weights out.
//   describe tests/data/models/qwen3
#include <nexus/registry/open.hpp>

#include <fmt/format.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: describe CHECKPOINT_DIR\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    // config.json -> descriptor; weights memory-mapped (zero copy) and bound to canonical names
    const auto opened = nexus::registry::open_checkpoint(dir);
    fmt::print("{}\n", nexus::reflect::to_json(opened.arch).dump(2));
    const auto& binding = opened.bound;
    for (const auto& t : binding.tensors)
      fmt::print("{:<50} -> {}\n", t.tensor.name, fmt::join(t.expected.targets, ", "));
    return binding.complete() ? 0 : 1;
  } catch (const nexus::error& e) {
    fmt::print(stderr, "describe: {}\n", e.what());
    return 1;
  }
}
