// The dependency rule of include/nexus (docs/layout.md): each folder includes only folders of a
// lower layer (or itself), and no header includes itself through others. Read from the sources,
// so a new include that runs upwards or closes a cycle fails here.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

/// Layers, lowest first: a header may include headers of its own layer or a lower one.
const std::map<std::string, int> layer_of_folder{
    {"core", 0},     {"reflect", 1},   {"io", 2},      {"arch", 3},       {"math", 4},
    {"registry", 5}, {"model", 6},     {"inspect", 7}, {"backend", 8},    {"tokenizer", 9},
    {"chat", 10},    {"generate", 11}, {"fusion", 12}, {"nexus.hpp", 99},  // the umbrella
};

std::string folder_of(const std::string& header) {  // "arch/enums.hpp" -> "arch"
  return header.substr(0, header.find('/'));
}

/// header (relative to include/nexus) -> the nexus headers it includes.
std::map<std::string, std::vector<std::string>> include_graph() {
  const fs::path root = fs::path(NEXUS_SOURCE_DIR) / "include" / "nexus";
  std::map<std::string, std::vector<std::string>> graph;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().extension() != ".hpp") continue;
    const auto name = fs::relative(e.path(), root).generic_string();
    auto& deps = graph[name];
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {  // #include "nexus/<dep>"
      const auto at = line.find_first_not_of(" \t");
      if (at == std::string::npos || line.compare(at, 8, "#include") != 0) continue;
      const auto open = line.find("\"nexus/", at), close = open == std::string::npos ? open : line.find('"', open + 1);
      if (close != std::string::npos) deps.push_back(line.substr(open + 7, close - open - 7));
    }
  }
  return graph;
}

}  // namespace

TEST_CASE("headers include only their own layer or lower ones") {
  const auto graph = include_graph();
  REQUIRE(graph.size() >= 40);
  for (const auto& [header, deps] : graph) {
    INFO(header);
    REQUIRE(layer_of_folder.count(folder_of(header)));  // a new folder must be given a layer here
    for (const auto& dep : deps) {
      INFO("includes " << dep);
      REQUIRE(graph.count(dep));  // the included header exists
      CHECK(layer_of_folder.at(folder_of(dep)) <= layer_of_folder.at(folder_of(header)));
    }
  }
}

TEST_CASE("no include cycles") {
  const auto graph = include_graph();
  std::map<std::string, int> state;  // 0 unvisited, 1 on the path, 2 done
  std::vector<std::string> path;
  std::function<void(const std::string&)> visit = [&](const std::string& h) {
    state[h] = 1;
    path.push_back(h);
    for (const auto& dep : graph.at(h)) {
      if (!graph.count(dep)) continue;
      if (state[dep] == 1) {
        std::string cycle;
        for (auto it = std::find(path.begin(), path.end(), dep); it != path.end(); ++it) cycle += *it + " -> ";
        FAIL_CHECK("include cycle: " << cycle << dep);
      } else if (state[dep] == 0) {
        visit(dep);
      }
    }
    path.pop_back();
    state[h] = 2;
  };
  for (const auto& [header, deps] : graph)
    if (state[header] == 0) visit(header);
}
