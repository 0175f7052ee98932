// `nexus eval SYSTEM.nexus|MODEL... --corpus DIR [--json] [--per-doc FILE] [--chart FILE.png]`: a fused
// system (or teachers, fused here and fitted on the corpus's dev documents) measured on a corpus of
// domains (nexus/fusion/evaluation/eval.hpp): bits per byte of each teacher, mode and baseline per
// domain and overall, each against the best teacher with a paired bootstrap interval, and a verdict
// for the default mode by a fixed margin; the capability probes in DIR/probes when there are any. The method is fixed before the run (bench/fusion/PROTOCOL.md).
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../command.hpp"
#include "../options.hpp"
#include "../progress.hpp"
#include "../table.hpp"
#include "bundle.hpp"
#include "nexus/chart/plot.hpp"
#include "nexus/fusion/evaluation/eval.hpp"

namespace nexus::cli {

struct eval_args {
  std::vector<std::string> models, names;
  std::string corpus, per_doc, chart, default_method = "mixture", mixture = "linear";
  double margin = 0.005;
  std::size_t resamples = 2000;
  std::uint64_t seed = 0;
  int threads = 0;
  bool json = false, quiet = false, no_probes = false;
};

/// The intervals of every mode and baseline against the best teacher, one block per domain.
inline void eval_chart(const fusion::eval_report& r, const std::string& path) {
  chart::interval_chart_spec c;
  c.title = "Minus the best teacher, 95% interval";
  c.x_label = "bits per byte against the best teacher, % (negative: better)";
  c.reference_lines = {0.0, 100 * r.margin};
  for (std::size_t m = r.teachers; m < r.methods.size(); ++m) c.series_names.push_back(r.methods[m]);
  auto block = [&](const fusion::eval_group& g) {
    if (!c.rows.empty()) c.rows.push_back({"", NAN, NAN, NAN, 0});  // a gap between domains
    for (std::size_t m = r.teachers; m < r.methods.size(); ++m)
      if (const auto& v = g.versus[m])
        c.rows.push_back({m == r.teachers ? g.name : "", 100 * v->interval.relative, 100 * v->interval.low,
                          100 * v->interval.high, m - r.teachers});
  };
  for (const auto& g : r.domains) block(g);
  block(r.overall);
  chart::interval_chart(path, c);
}

inline void print_eval(const fusion::eval_report& r, const fusion::eval_scores& s) {
  fmt::print(
      "eval: {} test documents; dev {} documents ({} bytes); best teacher on dev '{}' (temperature {:.3f}); "
      "{:.0f} s\n",
      s.documents.size(), s.dev_documents, s.dev_bytes, r.methods[r.best_on_dev], r.temperature, s.seconds);
  std::vector<std::string> header = {"bits/byte"};
  std::vector<const fusion::eval_group*> groups;
  for (const auto& g : r.domains) groups.push_back(&g);
  groups.push_back(&r.overall);
  for (const auto* g : groups) header.push_back(g->name);
  std::vector<std::vector<std::string>> rows;
  for (std::size_t m = 0; m < r.methods.size(); ++m) {
    std::vector<std::string> row = {r.methods[m] + (m == r.default_method ? " (default)" : "")};
    for (const auto* g : groups) row.push_back(fmt::format("{:.4f}", g->bits_per_byte[m]));
    rows.push_back(std::move(row));
  }
  print_table(header, rows);
  fmt::print("\n{} minus the best teacher, 95% interval; margin {:+.2f}%:\n", r.methods[r.default_method],
             100 * r.margin);
  rows.clear();
  for (const auto* g : groups) {
    const auto& v = g->versus[r.default_method];
    rows.push_back({g->name, std::to_string(g->documents), std::to_string(g->bytes), r.methods[g->best_teacher],
                    v ? fmt::format("{:+.2f}% [{:+.2f}%, {:+.2f}%]", 100 * v->interval.relative, 100 * v->interval.low,
                                    100 * v->interval.high)
                      : "(is the best teacher)",
                    v ? fusion::name_of(v->verdict) : "non-inferior"});
  }
  print_table({"domain", "documents", "bytes", "best teacher", "difference", "verdict"}, rows);
  if (r.probes.empty()) return;
  fmt::print("\nprobes: accuracy [95% interval]; kept: {} within the best teacher's interval or above\n",
             r.methods[r.default_method]);
  header = {"method"};
  for (const auto& t : r.probes) header.push_back(fmt::format("{} ({} items)", t.name, t.items));
  rows.clear();
  for (std::size_t m = 0; m + 1 < r.methods.size(); ++m) {
    std::vector<std::string> row = {r.methods[m]};
    for (const auto& t : r.probes)
      row.push_back(fmt::format("{:.1f}% [{:.1f}, {:.1f}]", 100 * t.accuracy[m].value, 100 * t.accuracy[m].low,
                                100 * t.accuracy[m].high));
    rows.push_back(std::move(row));
  }
  std::vector<std::string> kept = {"kept"};
  for (const auto& t : r.probes) kept.push_back(t.kept ? "yes" : "no");
  rows.push_back(std::move(kept));
  print_table(header, rows);
}

inline int eval(const eval_args& a) {
  namespace fs = std::filesystem;
  const auto corpus = fusion::read_eval_corpus(a.corpus);
  if (a.models.empty()) throw usage_error("eval", "give a .nexus bundle or the teachers' models");
  const bool bundle = a.models.size() == 1 && fs::path(a.models[0]).extension() == ".nexus";
  for (const auto& m : a.models)
    if (fs::path(m).extension() == ".nexus" && !bundle) throw usage_error("eval", "give one .nexus bundle, alone");
  // Teachers given as models are fused in a bundle of their own, beside nothing: removed at the end.
  struct removed_at_end {
    fs::path path;
    ~removed_at_end() {
      std::error_code ec;
      if (!path.empty()) fs::remove(path, ec);
    }
  } temporary;
  std::string path = bundle ? a.models[0] : "";
  if (!bundle) {
    if (!a.names.empty() && a.names.size() != a.models.size())
      throw usage_error("--name",
                        std::to_string(a.names.size()) + " names for " + std::to_string(a.models.size()) + " models");
    bundle_args b;
    b.teachers = a.models;
    b.names = a.names;
    b.out = (fs::temp_directory_path() / fmt::format("nexus-eval-{}.nexus", ::getpid())).string();
    temporary.path = path = b.out;
    write_new_bundle(b);
  }
  auto sys = fusion::load_bundle(path, {.cpu = {.threads = a.threads}});
  fusion::eval_options o;
  o.fit = !bundle;
  o.fitting.kind = parse_mixture_kind(a.mixture);
  o.default_method = a.default_method;
  o.margin = a.margin;
  o.resamples = a.resamples;
  o.seed = a.seed;
  progress_line bar(a.quiet);
  o.progress = [&](const char* stage, std::size_t done, std::size_t total) {
    bar.show(double(done) / double(std::max<std::size_t>(total, 1)),
             fmt::format("{} {}/{} ({})", stage, done, total,
                         std::string(stage) == "dev"    ? "teacher, document"
                         : std::string(stage) == "test" ? "documents"
                                                        : "items"));
  };
  auto scores = fusion::score_corpus(sys, corpus, o);
  if (const auto probes = fs::path(a.corpus) / "probes"; !a.no_probes && fs::is_directory(probes))
    fusion::score_probes(sys, fusion::read_probe_tasks(probes), scores, o);
  bar.finish();
  const auto report = fusion::summarise(scores, o);
  if (!a.per_doc.empty()) {
    std::ofstream out(a.per_doc, std::ios::binary);
    if (!out) throw io_error(a.per_doc, "cannot write the per-document file");
    out << fusion::per_document_jsonl(scores);
  }
  if (!a.chart.empty()) eval_chart(report, a.chart);
  if (a.json) {
    auto j = fusion::to_json(report);
    j["corpus"] = a.corpus;
    j["system"] = bundle ? a.models[0] : "";
    j["fitted_on_dev"] = !bundle;
    j["dev"] = {{"documents", scores.dev_documents}, {"bytes", scores.dev_bytes}};
    j["seconds"] = scores.seconds;
    fmt::print("{}\n", j.dump(2));
  } else {
    print_eval(report, scores);
  }
  return 0;
}

class eval_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("eval",
                              "Bits per byte of a fused system on a corpus of domains: every teacher, mode and "
                              "baseline, intervals against the best teacher, a verdict per domain");
    sub_->add_option("system", a_.models,
                     "a .nexus bundle (its own parameters), or the teachers' models (fused and fitted on the dev "
                     "documents)")
        ->required()
        ->transform(model_name);
    sub_->add_option("--corpus", a_.corpus, "folder of DOMAIN/dev/*.txt and DOMAIN/test/*.txt")->required();
    sub_->add_option("--name", a_.names, "models: a name per teacher");
    sub_->add_flag("--json", a_.json, "print one JSON object");
    sub_->add_option("--per-doc", a_.per_doc, "write each test document's nats per method here (JSON lines)");
    sub_->add_option("--chart", a_.chart, "write the intervals as a PNG chart here");
    sub_->add_option("--default", a_.default_method, "the mode the verdicts are for (default: mixture)")
        ->check(CLI::IsMember({"mixture", "cascade", "router"}));
    sub_->add_option("--mixture", a_.mixture, "models: the mixture kind fitted (default: linear)");
    sub_->add_option("--margin", a_.margin, "non-inferiority margin, relative (default 0.005)")
        ->check(CLI::Range(0.0, 1.0));
    sub_->add_option("--resamples", a_.resamples, "bootstrap resamples (default 2000)")
        ->check(CLI::Range(100, 1000000));
    sub_->add_option("--seed", a_.seed, "bootstrap seed (default 0)");
    sub_->add_flag("--no-probes", a_.no_probes, "skip the capability probes (DIR/probes/*.jsonl, scored when present)");
    sub_->add_flag("--quiet", a_.quiet, "no progress line");
    add_threads_option(*sub_, a_.threads);
  }
  int run() override {
    if (a_.models.size() == 1 && fs::path(a_.models[0]).extension() == ".nexus")
      refuse({"--name", "--mixture"}, "only for teachers given as models (a bundle keeps its own)");
    return eval(a_);
  }

 private:
  eval_args a_;
};

}  // namespace nexus::cli
