// `nexus bundle create|inspect|verify`: the .nexus bundle file (nexus/fusion/bundle.hpp).
#pragma once

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nexus/fusion/bundle.hpp"
#include "nexus/fusion/teacher_set.hpp"
#include "nexus/registry/open.hpp"

namespace nexus::cli {

struct bundle_args {
  std::vector<std::string> teachers, names;
  std::string file, out, budget = "0";
  bool embed = false, json = false;
};

/// Creates a bundle of the given teachers (no fitted parameters yet: mixtures, routers and cascades
/// are added by the fitting steps), each recorded by size and sha256.
inline int bundle_create(const bundle_args& a) {
  namespace fs = std::filesystem;
  if (!a.names.empty() && a.names.size() != a.teachers.size())
    throw usage_error("bundle create", std::to_string(a.names.size()) + " --name for " +
                                           std::to_string(a.teachers.size()) + " --teacher");
  fusion::bundle_manifest m;
  m.budget_bytes = fusion::parse_bytes(a.budget);
  std::vector<std::vector<char>> embedded;
  std::vector<tensor_to_write> tensors;
  embedded.reserve(a.teachers.size());
  for (std::size_t i = 0; i < a.teachers.size(); ++i) {
    const fs::path p = fs::absolute(a.teachers[i]);
    if (a.embed && !fs::is_regular_file(p))
      throw usage_error("bundle create",
                        p.string() + " is a folder: only single-file teachers (.gguf) can be embedded");
    (void)registry::open_checkpoint(p.string());  // a teacher Nexus cannot read is refused now, not at load
    fusion::bundle_teacher t;
    t.name = a.names.empty() ? p.stem().string() : a.names[i];
    t.file = p.lexically_normal().filename().empty() ? p.lexically_normal().parent_path().filename().string()
                                                     : p.lexically_normal().filename().string();
    const auto d = fusion::digest_teacher(p);
    t.bytes = d.bytes;
    t.sha256 = d.sha256;
    if (a.embed) {
      std::ifstream in(p, std::ios::binary);
      embedded.emplace_back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const auto name = "teacher." + std::to_string(i);
      t.source = {fusion::teacher_source::kind::embedded, name};
      tensors.push_back({name, dtype::u8, {std::int64_t(t.bytes)}, std::as_bytes(std::span(embedded.back()))});
    } else {
      t.source = {fusion::teacher_source::kind::path, p.string()};
    }
    m.teachers.push_back(std::move(t));
  }
  fusion::write_bundle(a.out, m, tensors);
  fmt::print("bundle {}: {} teachers, {} bytes\n", a.out, m.teachers.size(), fs::file_size(a.out));
  return 0;
}

inline int bundle_inspect(const bundle_args& a) {
  const fusion::bundle_file b(a.file);
  if (a.json) {
    fmt::print("{}\n", fusion::to_json(b.manifest()).dump(2));
    return 0;
  }
  const auto& m = b.manifest();
  fmt::print("bundle {} (format {} version {}), budget {}\n", a.file, fusion::bundle_format, fusion::bundle_version,
             m.budget_bytes ? fusion::format_bytes(m.budget_bytes) : "none");
  for (std::size_t i = 0; i < m.teachers.size(); ++i) {
    const auto& t = m.teachers[i];
    fmt::print("  teacher {} '{}': {} ({}), sha256 {}, from {} {}\n", i, t.name, t.file, fusion::format_bytes(t.bytes),
               t.sha256.substr(0, 16), fusion::detail::name_of(t.source.k), t.source.value);
  }
  if (m.mixture)
    fmt::print("  mixture: {} with weights '{}'\n", fusion::detail::name_of(m.mixture->kind), m.mixture->weights);
  if (m.cascade)
    fmt::print("  cascade: order {}, thresholds '{}'\n", fmt::join(m.cascade->order, " -> "), m.cascade->thresholds);
  if (m.router)
    fmt::print("  router: first {} bytes, '{}' + '{}'\n", m.router->prefix_bytes, m.router->weight, m.router->bias);
  for (const auto& br : m.bridges) fmt::print("  bridge '{}': tensors '{}*'\n", br.name, br.prefix);
  return 0;
}

/// Every teacher present with the recorded size and sha256, and readable by Nexus.
inline int bundle_verify(const bundle_args& a) {
  const fusion::bundle_file b(a.file);
  for (std::size_t i = 0; i < b.manifest().teachers.size(); ++i) {
    const auto p = fusion::resolve_teacher(b, i);
    const auto o = registry::open_checkpoint(p.string());
    fmt::print("teacher {} '{}': {} ok ({})\n", i, b.manifest().teachers[i].name, p.string(), o.arch.family);
  }
  fmt::print("bundle {}: ok\n", a.file);
  return 0;
}

}  // namespace nexus::cli
