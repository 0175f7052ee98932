// The dependency rule of the sources (docs/layout.md), read from the files themselves, so a new
// include that runs upwards, sideways or in a cycle fails here:
// * include/nexus: each folder includes only folders of a lower layer (or itself); inside a folder
//   whose subfolders are stages (fusion: teachers → bytes → features → maps → bridges → mixtures →
//   system → evaluation), a stage includes only itself or earlier stages; siblings (backend/cpu, backend/cuda)
//   include neither each other; every folder and subfolder must be given a place below.
// * Outside the library (tools, bench, examples, kernels, tests): a file includes library headers,
//   the charts (tools/chart: nexus::chart, a library of its own) and files of its own top folder;
//   tests may also read the tools they test. No file outside tests
//   reaches into the library's `detail` namespaces.
// Includes are read in every form: "nexus/x.hpp", <nexus/x.hpp> and relative "x.hpp" / "../x.hpp".
// NEXUS_LAYERING_ROOT checks another tree (for example an older checkout).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

fs::path source_root() {
  const char* other = std::getenv("NEXUS_LAYERING_ROOT");
  return fs::path(other && *other ? other : NEXUS_SOURCE_DIR);
}

/// Layers of include/nexus, lowest first: a header may include headers of its own layer or a lower one.
const std::map<std::string, int> layer_of_folder{
    {"core", 0},     {"reflect", 1},   {"io", 2},      {"arch", 3},       {"math", 4},
    {"registry", 5}, {"model", 6},     {"inspect", 7}, {"backend", 8},    {"tokenizer", 9},
    {"chat", 10},    {"generate", 11}, {"fusion", 12}, {"nexus.hpp", 99},  // the umbrella
};

/// Subfolders: their order inside their folder (a stage includes only itself or earlier ones), or
/// -1 for siblings that must not include each other.
const std::map<std::string, int> stage_of_subfolder{
    {"registry/families", 0},                        // one file per family, read by the registry
    {"backend/cpu", -1},      {"backend/cuda", -1},  // two backends of the same model
    {"fusion/teachers", 0},   {"fusion/bytes", 1},    {"fusion/features", 2}, {"fusion/maps", 3},
    {"fusion/bridges", 4},    {"fusion/mixtures", 5}, {"fusion/system", 6},   {"fusion/evaluation", 7},
};

/// Top folders outside the library whose files are checked, and what else each may include.
const std::map<std::string, std::set<std::string>> outside_may_include{
    {"tools", {}}, {"bench", {}}, {"examples", {}}, {"kernels", {}}, {"tests", {"tools"}},
};

struct include_line {
  std::string target;  // as written
  bool angled = false;
  int line = 0;
};

std::vector<include_line> includes_of(const fs::path& file) {
  static const std::regex include_re(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::vector<include_line> out;
  std::ifstream in(file);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::smatch m;
    if (std::regex_search(line, m, include_re)) out.push_back({m[2].str(), m[1].str() == "<", n});
  }
  return out;
}

/// What an include names inside the tree: a path relative to the source root, or nullopt for a
/// system or third-party header. "nexus/x" and <nexus/x> name include/nexus/x.
std::optional<std::string> resolve(const fs::path& root, const fs::path& file, const include_line& inc) {
  if (inc.target.rfind("nexus/chart/", 0) == 0) return "tools/chart/include/" + inc.target;  // nexus::chart
  if (inc.target.rfind("nexus/", 0) == 0) return "include/" + inc.target;
  if (inc.angled) return std::nullopt;
  const auto beside = (file.parent_path() / inc.target).lexically_normal();
  if (!fs::exists(beside)) return std::nullopt;  // generated (kernels' build config) or found on the include path
  return fs::relative(beside, root).generic_string();
}

struct place {
  std::string folder, sub;  // "fusion", "fusion/bytes" (sub empty for a file directly in the folder)
};
place library_place(const std::string& under_nexus) {  // "fusion/bytes/score.hpp"
  const auto a = under_nexus.find('/');
  if (a == std::string::npos) return {under_nexus, ""};
  const auto b = under_nexus.find('/', a + 1);
  return {under_nexus.substr(0, a), b == std::string::npos ? "" : under_nexus.substr(0, b)};
}

/// "" when `from` may include `to` (both relative to include/nexus), else why not.
std::string library_violation(const std::string& from, const std::string& to) {
  const auto f = library_place(from), t = library_place(to);
  const int lf = layer_of_folder.at(f.folder), lt = layer_of_folder.at(t.folder);
  if (lt > lf) return "a lower layer (" + f.folder + ") includes a higher one (" + t.folder + ")";
  if (lt < lf || f.sub == t.sub || t.sub.empty()) return "";
  if (f.sub.empty()) return "";  // a folder's own top-level header may gather its subfolders
  const int sf = stage_of_subfolder.at(f.sub), st = stage_of_subfolder.at(t.sub);
  if (sf < 0 || st < 0) return "siblings " + f.sub + " and " + t.sub + " include each other";
  if (st > sf) return "an earlier stage (" + f.sub + ") includes a later one (" + t.sub + ")";
  return "";
}

std::vector<fs::path> sources_under(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::exists(dir)) return files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const auto ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".hpp" || ext == ".cpp" || ext == ".h" || ext == ".cu" || ext == ".cuh"))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// header (relative to include/nexus) -> the library headers it includes.
std::map<std::string, std::vector<std::string>> include_graph() {
  const auto root = source_root();
  const fs::path nexus = root / "include" / "nexus";
  std::map<std::string, std::vector<std::string>> graph;
  for (const auto& file : sources_under(nexus)) {
    auto& deps = graph[fs::relative(file, nexus).generic_string()];
    for (const auto& inc : includes_of(file))
      if (const auto r = resolve(root, file, inc))  // anything in the tree outside include/nexus stays outside
        deps.push_back(r->rfind("include/nexus/", 0) == 0 ? r->substr(14) : "(outside the library) " + *r);
  }
  return graph;
}

}  // namespace

TEST_CASE("every library folder and subfolder has a place in the layering") {
  const fs::path nexus = source_root() / "include" / "nexus";
  std::size_t folders = 0;
  for (const auto& e : fs::recursive_directory_iterator(nexus)) {
    const auto rel = fs::relative(e.path(), nexus).generic_string();
    INFO(rel);
    const auto p = library_place(e.is_directory() ? rel + "/" : rel);
    CHECK(layer_of_folder.count(p.folder));  // a new folder must be given a layer above
    if (e.is_directory() && !p.sub.empty()) {
      CHECK(stage_of_subfolder.count(p.sub));  // a new subfolder must be given a stage above
      ++folders;
    }
  }
  CHECK(folders >= 9);
}

TEST_CASE("library headers include only their own layer, lower layers and earlier stages") {
  const auto graph = include_graph();
  REQUIRE(graph.size() >= 40);
  for (const auto& [header, deps] : graph)
    for (const auto& dep : deps) {
      INFO(header << " includes " << dep);
      REQUIRE(graph.count(dep));  // the included header exists
      CHECK(library_violation(header, dep) == "");
    }
}

TEST_CASE("tools, bench, examples, kernels and tests include the library, and only their own files besides") {
  const auto root = source_root();
  std::size_t files = 0;
  for (const auto& [top, also] : outside_may_include)
    for (const auto& file : sources_under(root / top)) {
      ++files;
      for (const auto& inc : includes_of(file)) {
        const auto r = resolve(root, file, inc);
        if (!r) continue;
        INFO(fs::relative(file, root).generic_string() << ":" << inc.line << " includes " << *r);
        CHECK(fs::exists(root / *r));
        const auto target_top = r->rfind("tools/chart/", 0) == 0 ? "chart" : r->substr(0, r->find('/'));
        CHECK((target_top == "include" || target_top == "chart" || target_top == top || also.count(target_top)));
      }
    }
  CHECK(files >= 50);
}

TEST_CASE("nothing outside the library and its tests reaches into a detail namespace") {
  const auto root = source_root();
  static const std::regex detail_use(R"(\bdetail::)");
  for (const char* top : {"tools", "bench", "examples"})
    for (const auto& file : sources_under(root / top)) {
      if (fs::relative(file, root).generic_string().rfind("tools/chart/", 0) == 0) continue;  // a library of its own
      std::ifstream in(file);
      int n = 0;
      for (std::string line; std::getline(in, line);) {
        ++n;
        INFO(fs::relative(file, root).generic_string() << ":" << n << ": " << line);
        CHECK_FALSE(std::regex_search(line, detail_use));
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
