// `nexus bundle create|add|inspect|verify`: the .nexus bundle file (nexus/fusion/system/bundle.hpp); with
// `create --fit DEV` the mixture, router and cascade are fitted on development text (fusion/system/system.hpp)
// and the teachers' reading of it cached beside the bundle, so that `add` reads only the new teacher
// (fusion/system/add_teacher.hpp);
// `nexus generate system.nexus` generates through a bundle (generate.hpp).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "../options.hpp"
#include "../dev_examples.hpp"
#include "../progress.hpp"
#include "nexus/fusion/system/add_teacher.hpp"
#include "nexus/fusion/system/bundle.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/fusion/teachers/teacher_set.hpp"
#include "nexus/registry/open.hpp"

namespace nexus::cli {

struct bundle_args {
  std::vector<std::string> teachers, names;
  std::string file, out, budget = "0", fit, mixture = "linear", cascade_share = "auto";
  std::int64_t prefix_bytes = 64;
  double cascade_tolerance = 0.005;
  int threads = 0;
  bool embed = false, json = false, quiet = false;
};

inline fusion::mixture_kind parse_mixture_kind(const std::string& s) {
  if (const auto k = fusion::mixture_kind_named(s)) return *k;
  throw usage_error("--mixture", "'" + s + "' is not one of " + fusion::mixture_kind_names());
}

/// --cascade-share: "auto" (chosen by cross-validation) or a share in [0, 1].
inline std::optional<double> parse_cascade_share(const std::string& s) {
  if (s == "auto") return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size() && v >= 0 && v <= 1) return v;
  } catch (const std::exception&) {}
  throw usage_error("--cascade-share", "'" + s + "' is not auto or a share in [0, 1]");
}

/// The fit's summary: mixture, cascade (with its cross-validated curve) and router.
inline void print_fit(const fusion::fused_system& sys, const fusion::system_fit& f, const bundle_args& a) {
  const double bits = -f.mixture.log_likelihood / (std::log(2.0) * double(f.positions));
  fmt::print("fit on {} examples ({} bytes): {} mixture, weights {:.4f}, {:.4f} bits/byte\n", f.examples, f.positions,
             fusion::name_of(sys.kind()), fmt::join(f.mixture.weights, ", "), bits);
  if (const auto& c = f.cascade_selection) {
    fmt::print(
        "  cascade share chosen by {}-fold cross-validation across documents (the least within {:.2f}% of the "
        "mixture's {:.4f} bits/byte held out):\n",
        c->folds, 100 * c->tolerance, c->mixture_bits_per_byte);
    for (std::size_t k = 0; k < c->curve.size(); ++k)
      fmt::print("    share {:.2f}: {:5.1f}% escalated, {:.4f} bits/byte{}\n", c->curve[k].target_share,
                 100 * c->curve[k].escalated_share, c->curve[k].bits_per_byte, k == c->chosen ? "  <- chosen" : "");
  }
  if (f.cascade)
    fmt::print("  cascade: order {}, share {:.2f}, thresholds {:.3f} nats; {:.1f}% escalated, {:.4f} bits/byte\n",
               fmt::join(sys.cascade_order(), " -> "), f.cascade->target_share, fmt::join(f.cascade->thresholds, ", "),
               100 * f.cascade->escalated_share, f.cascade->bits_per_byte);
  if (f.router)
    fmt::print(
        "  router: first {} bytes, ridge λ {:.3g}, held-out R² {:.3f}; {}-fold: routed {:.4f} vs best teacher "
        "{:.4f} nats/byte{}\n",
        a.prefix_bytes, f.router->lambda, f.router->heldout_r2, f.router->folds, f.router->routed_loss,
        f.router->constant_loss,
        f.router->constant
            ? " -> constant: always '" + sys.manifest().teachers[f.router->model.constant_choice()].name + "'"
            : "");
}

/// The fit as JSON: what print_fit shows.
inline nlohmann::ordered_json fit_json(const fusion::fused_system& sys, const fusion::system_fit& f) {
  nlohmann::ordered_json j;
  j["examples"] = f.examples;
  j["bytes"] = f.positions;
  j["mixture"] = {{"kind", fusion::name_of(sys.kind())},
                  {"weights", f.mixture.weights},
                  {"bits_per_byte", -f.mixture.log_likelihood / (std::log(2.0) * double(f.positions))}};
  if (f.cascade) {
    j["cascade"] = {{"order", sys.cascade_order()},
                    {"share", f.cascade->target_share},
                    {"thresholds", f.cascade->thresholds},
                    {"escalated_share", f.cascade->escalated_share},
                    {"bits_per_byte", f.cascade->bits_per_byte}};
    if (const auto& c = f.cascade_selection) {
      auto curve = nlohmann::ordered_json::array();
      for (const auto& pt : c->curve)
        curve.push_back(
            {{"share", pt.target_share}, {"escalated_share", pt.escalated_share}, {"bits_per_byte", pt.bits_per_byte}});
      j["cascade"]["selection"] = {
          {"folds", c->folds}, {"tolerance", c->tolerance}, {"chosen", c->chosen}, {"curve", std::move(curve)}};
    }
  }
  if (f.router)
    j["router"] = {{"lambda", f.router->lambda},
                   {"heldout_r2", f.router->heldout_r2},
                   {"folds", f.router->folds},
                   {"routed_nats_per_byte", f.router->routed_loss},
                   {"best_teacher_nats_per_byte", f.router->constant_loss},
                   {"constant", f.router->constant}};
  return j;
}

/// The fitting options the arguments give.
inline fusion::system_fit_options fit_options(const bundle_args& a) {
  fusion::system_fit_options o;
  o.kind = parse_mixture_kind(a.mixture);
  o.prefix_bytes = a.prefix_bytes;
  o.cascade_share = parse_cascade_share(a.cascade_share);
  o.cascade_tolerance = a.cascade_tolerance;
  return o;
}

/// Fits the mixture, router and cascade of the bundle at `path` on `dev`, writes them into it and
/// the development cache beside it; prints the fit (as JSON with --json: the fit's object).
inline nlohmann::ordered_json fit_bundle(const std::string& path, const bundle_args& a) {
  const auto examples = read_dev_examples(a.fit, a.prefix_bytes);
  auto sys = fusion::load_bundle(path, {.cpu = {.threads = a.threads}});
  progress_line bar(a.quiet);
  auto o = fit_options(a);
  o.progress = [&](std::size_t done, std::size_t total) {
    bar.show(double(done) / double(std::max<std::size_t>(total, 1)),
             fmt::format("fit: {}/{} (teacher, example)", done, total));
  };
  const auto f = sys.fit_into(path, examples, o);
  bar.finish();
  if (!a.json) print_fit(sys, f, a);
  return fit_json(sys, f);
}

/// Adds a teacher to a fitted bundle: only it reads the development examples (the others' reading
/// is cached beside the bundle); mixture, cascade and router refitted on all.
inline int bundle_add(const bundle_args& a) {
  if (a.teachers.size() != 1) throw usage_error("bundle add", "give one --teacher");
  if (a.names.size() > 1) throw usage_error("bundle add", "give at most one --name");
  const std::filesystem::path p = std::filesystem::absolute(a.teachers[0]);
  (void)registry::open_checkpoint(p.string());  // a teacher Nexus cannot read is refused before anything is written
  auto name = a.names.empty() ? p.stem().string() : a.names[0];
  std::optional<std::vector<fusion::dev_example>> examples;
  if (!a.fit.empty()) examples = read_dev_examples(a.fit, a.prefix_bytes);
  auto o = fit_options(a);
  progress_line bar(a.quiet);
  o.progress = [&](std::size_t done, std::size_t total) {
    bar.show(double(done) / double(std::max<std::size_t>(total, 1)),
             fmt::format("{}: {}/{} examples", name, done, total));
  };
  const auto r = fusion::add_teacher(a.file, p, name, o, {.threads = a.threads}, examples ? &*examples : nullptr);
  bar.finish();
  const auto sys = fusion::load_bundle(a.file);
  if (a.json) {
    auto uses = nlohmann::ordered_json::object();
    for (std::size_t t = 0; t < r.uses.size(); ++t) uses[sys.manifest().teachers[t].name] = r.uses[t];
    fmt::print("{}\n", nlohmann::ordered_json{{"bundle", a.file},
                                              {"added", name},
                                              {"teachers", r.uses.size()},
                                              {"runs_while_adding", std::move(uses)},
                                              {"fit", fit_json(sys, r.fit)}}
                           .dump(2));
    return 0;
  }
  fmt::print("bundle {}: added '{}' ({} teachers); runs while adding:", a.file, name, r.uses.size());
  for (std::size_t t = 0; t < r.uses.size(); ++t) fmt::print(" {} {}", sys.manifest().teachers[t].name, r.uses[t]);
  fmt::print("\n");
  print_fit(sys, r.fit, a);
  return 0;
}

/// Writes a bundle of the given teachers at `a.out` (no fitted parameters yet: mixtures, routers and
/// cascades are added by the fitting steps), each recorded by size and sha256; its manifest.
inline fusion::bundle_manifest write_new_bundle(const bundle_args& a) {
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
  return m;
}

/// `bundle create`: a new bundle, fitted with --fit.
inline int bundle_create(const bundle_args& a) {
  const auto m = write_new_bundle(a);
  nlohmann::ordered_json fit;  // null without --fit
  if (!a.fit.empty()) fit = fit_bundle(a.out, a);
  if (a.json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"bundle", a.out},
                                              {"teachers", m.teachers.size()},
                                              {"bytes", std::filesystem::file_size(a.out)},
                                              {"fit", std::move(fit)}}
                           .dump(2));
    return 0;
  }
  fmt::print("bundle {}: {} teachers, {} bytes\n", a.out, m.teachers.size(), std::filesystem::file_size(a.out));
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
               t.sha256.substr(0, 16), fusion::name_of(t.source.k), t.source.value);
  }
  if (m.mixture) fmt::print("  mixture: {} with weights '{}'\n", fusion::name_of(m.mixture->kind), m.mixture->weights);
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
  auto teachers = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < b.manifest().teachers.size(); ++i) {
    const auto p = fusion::resolve_teacher(b, i);
    const auto o = registry::open_checkpoint(p.string());
    if (a.json)
      teachers.push_back({{"name", b.manifest().teachers[i].name}, {"path", p.string()}, {"family", o.arch.family}});
    else fmt::print("teacher {} '{}': {} ok ({})\n", i, b.manifest().teachers[i].name, p.string(), o.arch.family);
  }
  if (a.json)
    fmt::print("{}\n",
               nlohmann::ordered_json{{"bundle", a.file}, {"ok", true}, {"teachers", std::move(teachers)}}.dump(2));
  else fmt::print("bundle {}: ok\n", a.file);
  return 0;
}

/// `nexus bundle` and its three subcommands, sharing one set of arguments.
class bundle_command : public command {
 public:
  /// The fitting options `create` and `add` share.
  void add_fit_options(CLI::App* c) {
    c->add_option("--mixture", a_.mixture, "with --fit: linear, log_linear, entropy_gate or fixed_share");
    c->add_option("--prefix-bytes", a_.prefix_bytes, "with --fit: bytes of a prompt the router reads")
        ->check(CLI::Range(1, 1 << 20));
    c->add_option("--cascade-share", a_.cascade_share,
                  "share of bytes the cascade escalates: auto (the least whose cross-validated bits per byte are "
                  "within --cascade-tolerance of the mixture's) or a number in [0, 1]");
    c->add_option("--cascade-tolerance", a_.cascade_tolerance, "relative, for --cascade-share auto (default 0.005)")
        ->check(CLI::Range(0.0, 1.0));
    c->add_flag("--quiet", a_.quiet, "no progress line");
    add_threads_option(*c, a_.threads);
    c->add_flag("--json", a_.json, "print one JSON object (the bundle, and the fit with --fit)");
  }

  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("bundle", "A .nexus bundle: one file for a fused system of teachers");
    sub_->require_subcommand(1);
    create_ = sub_->add_subcommand("create", "Create a bundle of teachers (by size and sha256)");
    create_
        ->add_option("--teacher", a_.teachers,
                     ".gguf file, checkpoint folder or Hugging Face id (repeat for each teacher)")
        ->required()
        ->transform(model_name);
    create_->add_option("--name", a_.names, "a name per teacher (default: the file's stem)");
    create_->add_option("--budget", a_.budget, "most bytes of teacher weights resident at once (0: no limit)");
    create_->add_flag("--embed", a_.embed, "embed the teacher files in the bundle");
    create_
        ->add_option("--fit", a_.fit,
                     "development text to fit the mixture, router and cascade on (.jsonl rows {prompt, answer} or "
                     "{text}; else documents separated by blank lines)")
        ->check(CLI::ExistingFile);
    add_fit_options(create_);
    create_->add_option("-o,--out", a_.out, "the bundle file to write")->required();
    add_ = sub_->add_subcommand("add",
                                "Add a teacher to a fitted bundle: only it reads the development text (the others' "
                                "reading is cached beside the bundle), then mixture, cascade and router are refitted");
    add_->add_option("file", a_.file, "bundle file (fitted with bundle create --fit)")
        ->required()
        ->check(CLI::ExistingFile);
    add_->add_option("--teacher", a_.teachers, ".gguf file, checkpoint folder or Hugging Face id")
        ->required()
        ->transform(model_name);
    add_->add_option("--name", a_.names, "its name (default: the file's stem)");
    add_->add_option("--fit", a_.fit, "the development text the bundle was fitted on (checked against its cache)")
        ->check(CLI::ExistingFile);
    add_fit_options(add_);
    inspect_ = sub_->add_subcommand("inspect", "The manifest of a bundle");
    inspect_->add_option("file", a_.file, "bundle file")->required();
    inspect_->add_flag("--json", a_.json, "the manifest as JSON");
    verify_ = sub_->add_subcommand("verify", "Check that every teacher of a bundle is present, intact and readable");
    verify_->add_option("file", a_.file, "bundle file")->required();
    verify_->add_flag("--json", a_.json, "print one JSON object");
  }

  int run() override {
    if (*create_) {
      if (a_.fit.empty())
        refuse({"--mixture", "--prefix-bytes", "--cascade-share", "--cascade-tolerance", "--quiet", "--threads"},
               "only with --fit", create_);
      return bundle_create(a_);
    }
    if (*add_) {
      refuse({"--mixture", "--prefix-bytes"}, "bundle add keeps the bundle's mixture kind and the router's prefix",
             add_);
      return bundle_add(a_);
    }
    if (*inspect_) return bundle_inspect(a_);
    return bundle_verify(a_);
  }

 private:
  bundle_args a_;
  CLI::App *create_ = nullptr, *add_ = nullptr, *inspect_ = nullptr, *verify_ = nullptr;
};

}  // namespace nexus::cli
