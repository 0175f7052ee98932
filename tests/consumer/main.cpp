#include <nexus/nexus.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const auto n = nexus::registry::describe(std::filesystem::path(argv[1]));
  std::printf("%s %lld\n", n.family.c_str(), static_cast<long long>(n.dims.hidden_size));
  return 0;
}
