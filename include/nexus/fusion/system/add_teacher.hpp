// A teacher added to a fitted bundle without reading the others again: the bundle's development
// cache (development.hpp, beside it) holds every teacher's distributions over the development
// examples and the router's features; only the new teacher reads those examples (and, when it is the
// new cheapest, their prompts for the router's features), then the mixture, cascade and router are
// refitted on all of them: the same parameters as fitting every teacher from scratch, bit for bit.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "nexus/fusion/system/system.hpp"

namespace nexus::fusion {

struct added_teacher {
  system_fit fit;
  std::vector<std::size_t> uses;  // per teacher of the new bundle: get() calls while adding (runs)
};

/// Adds `teacher` (named `name`) to the bundle at `bundle` and refits it from its development cache.
/// `examples`, when given, must be the cached ones (a guard against fitting on other text by mistake);
/// `opt.progress` follows the new teacher's reading.
/// Written beside and renamed: a failure leaves the bundle and its cache as they were.
inline added_teacher add_teacher(const std::filesystem::path& bundle, const std::filesystem::path& teacher,
                                 const std::string& name, system_fit_options opt = {}, cpu_options cpu = {},
                                 const std::vector<dev_example>* examples = nullptr) {
  namespace fs = std::filesystem;
  const auto tmp = fs::path(bundle.string() + ".adding");
  development_set dev;
  {
    const bundle_file b(bundle);
    for (const auto& t : b.manifest().teachers)
      if (t.name == name)
        throw usage_error("bundle add", "'" + name + "' already names a teacher of " + bundle.string());
    dev = read_development(development_path(bundle), teacher_digests(b.manifest()));
    if (examples) {  // compared as whole texts: the split into prompt and rest is the cache's
      std::vector<std::string> given, cached;
      for (const auto& e : *examples)
        if (!e.prompt.empty() || !e.continuation.empty()) given.push_back(e.prompt + e.continuation);
      for (const auto& e : dev.examples) cached.push_back(e.prompt + e.continuation);
      if (given != cached)
        throw usage_error("bundle add", "the development text differs from the one " + bundle.string() +
                                            " was fitted on (its cache holds " + std::to_string(dev.examples.size()) +
                                            " examples): refit every teacher with bundle create --fit");
    }
    if (b.manifest().mixture) opt.kind = b.manifest().mixture->kind;
  }
  opt.prefix_bytes = dev.prefix_bytes;
  fs::copy_file(bundle, tmp, fs::copy_options::overwrite_existing);
  try {
    const auto p = fs::absolute(teacher);
    const auto d = digest_teacher(p);
    rewrite_bundle(tmp, [&](bundle_manifest& m, std::vector<tensor_to_write>&) {
      auto file = p.lexically_normal();
      if (file.filename().empty()) file = file.parent_path();
      m.teachers.push_back(
          {name, file.filename().string(), d.sha256, d.bytes, {teacher_source::kind::path, p.string()}});
      m.mixture.reset(), m.cascade.reset(), m.router.reset();  // refitted below
    });
    fused_system sys(tmp, {.cpu = cpu});
    const auto added = sys.teachers().size() - 1;
    std::size_t done = 0;
    dev.rows.push_back(read_development_teacher(sys.teachers(), added, dev.examples, [&] {
      if (opt.progress) opt.progress(++done, dev.examples.size());
    }));
    if (dev.feature_teacher != sys.parameters().feature_teacher)  // the new teacher is the cheapest
      read_development_features(sys.teachers(), sys.parameters().feature_teacher, dev);
    added_teacher out{sys.fit(dev, opt), {}};
    for (std::size_t t = 0; t < sys.teachers().size(); ++t) out.uses.push_back(sys.teachers().uses(t));
    sys.save(tmp);
    save_development(development_path(tmp), dev, sys.teacher_digests());
    fs::rename(development_path(tmp), development_path(bundle));
    fs::rename(tmp, bundle);
    return out;
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::remove(development_path(tmp), ec);
    throw;
  }
}

}  // namespace nexus::fusion
