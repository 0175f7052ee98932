// `nexus align`: closed-form maps between two teachers' hidden states from a feature store
// (fusion/maps/closed_form.hpp), fitted on the train documents and scored on the held-out ones: R², mean
// cosine similarity and relative error per method, for one pair of layers or every pair (--all-layers,
// a layer × layer grid per method in the JSON report).
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../command.hpp"
#include "nexus/chart/plot.hpp"
#include "nexus/fusion/features/store_pairs.hpp"
#include "nexus/fusion/maps/closed_form.hpp"

namespace nexus::cli {

struct align_args {
  std::string store, from, to, method = "all", out;
  std::vector<std::string> layers_from, layers_to;  // with all_layers: a subset of the stored layers
  bool all_layers = false, quiet = false, json = false;
  double epsilon = 0.02;
  std::int64_t batch_rows = 4096;
  int threads = 2;  // pairs fitted at once
};

inline const std::vector<std::string>& align_methods() {
  static const std::vector<std::string> m = {"ridge", "procrustes", "cca", "ot"};
  return m;
}

inline nlohmann::ordered_json quality_json(const fusion::map_quality& q) {
  return {{"r2", q.r2}, {"cosine", q.cosine}, {"relative_error", q.relative_error}};
}

/// One pair of layers: statistics of the train part, each method's map, scored on the held-out part.
inline nlohmann::ordered_json align_pair(const fusion::feature_store& s, const fusion::store_layer& a,
                                         const fusion::store_layer& b, const fusion::heldout_split& split,
                                         const std::vector<std::string>& methods, const align_args& args) {
  using namespace fusion;
  store_pairs train_rows(s, a, b, split, split_part::train, args.batch_rows);
  store_pairs held_rows(s, a, b, split, split_part::heldout, args.batch_rows);
  const auto train = accumulate(train_rows);
  const auto held = accumulate(held_rows);
  const auto need = std::int64_t(2);
  if (train.count() < need || held.count() < need)
    throw usage_error(s.dir().string(), fmt::format("too few rows for {}:{} -> {}:{}: {} train and {} held-out (need "
                                                    "at least {} each; extract more text)",
                                                    s.teacher_name(a.teacher), a.key, s.teacher_name(b.teacher), b.key,
                                                    train.count(), held.count(), need));
  nlohmann::ordered_json out = {{"from", a.key}, {"to", b.key}};
  out["rows"] = {{"train", train.count()}, {"heldout", held.count()}};
  auto score = [&](const affine_map& f) {
    held_rows.rewind();
    return evaluate(f, held_rows);
  };
  // The mean of the train rows as the prediction: what a map has to beat (its R² is about 0).
  out["baseline_mean"] = quality_json(
      score(affine_map{train.width_x(), train.width_y(),
                       std::vector<double>(std::size_t(train.width_x() * train.width_y())), train.mean_y()}));
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  for (const auto& method : methods) {
    const auto t0 = std::chrono::steady_clock::now();
    nlohmann::ordered_json r;
    affine_map f;
    if (method == "ridge") {
      const auto fit = fit_ridge(train, held);
      f = fit.map;
      r["lambda"] = fit.lambda;
      r["lambda_grid"] = fit.grid;
      r["r2_grid"] = fit.r2;
    } else if (method == "procrustes") {
      const auto fit = fit_procrustes(train);
      f = fit.map;
      r["scale"] = fit.scale;
    } else if (method == "cca") {
      const auto fit = fit_cca(train);
      f = fit.map;
      r["correlations_top"] = std::vector<double>(
          fit.correlations.begin(),
          fit.correlations.begin() + std::ptrdiff_t(std::min<std::size_t>(8, fit.correlations.size())));
      double sum = 0;
      for (auto c : fit.correlations) sum += c;
      r["correlation_mean"] = fit.correlations.empty() ? 0.0 : sum / double(fit.correlations.size());
    } else if (method == "ot") {
      const auto fit = fit_ot(train, args.epsilon);
      f = fit.map;
      r["epsilon"] = args.epsilon;
      r["sinkhorn_iterations"] = fit.transport.iterations;
      r["marginal_error"] = fit.transport.marginal_error;
    } else {
      throw usage_error("--method", "'" + method + "': ridge, procrustes, cca, ot or all");
    }
    const auto q = score(f);
    nlohmann::ordered_json entry = quality_json(q);
    entry.update(r);
    entry["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    m[method] = entry;
  }
  out["methods"] = m;
  return out;
}

/// The layers to pair, from and to: one each, or with --all-layers every stored layer of the two teachers
/// (or the --layers-from / --layers-to subsets), in depth order.
inline std::pair<std::vector<fusion::store_layer>, std::vector<fusion::store_layer>> layers_to_align(
    const fusion::feature_store& s, const align_args& args) {
  using namespace fusion;
  std::vector<store_layer> froms, tos;
  if (!args.all_layers) {
    froms.push_back(parse_store_layer(s, args.from));
    tos.push_back(parse_store_layer(s, args.to));
    return {froms, tos};
  }
  // With --all-layers, --from and --to name teachers (a layer part, if given, is ignored).
  for (const auto* spec : {&args.from, &args.to}) {
    const auto who = spec->find(':') == std::string::npos ? *spec : spec->substr(0, spec->rfind(':'));
    const auto t = find_teacher(s, who, *spec);
    auto& list = spec == &args.from ? froms : tos;
    const auto& subset = spec == &args.from ? args.layers_from : args.layers_to;
    if (subset.empty())
      for (const auto& key : s.layer_keys(t)) list.push_back({t, key});
    else
      for (const auto& l : subset) list.push_back(parse_store_layer(s, std::to_string(t) + ":" + l));
    // Layers in depth order, the final norm last.
    auto depth = [](const store_layer& l) {
      return l.key == "final" ? std::numeric_limits<std::int64_t>::max() : std::stoll(l.key.substr(5));
    };
    std::stable_sort(list.begin(), list.end(), [&](const auto& a, const auto& b) { return depth(a) < depth(b); });
  }
  return {froms, tos};
}

/// Every pair (from × to, row-major), each by align_pair. Pairs are independent: `threads` workers take them
/// in turn (the store is read-only, mapped), printing a line per pair unless quiet. The first failing pair's
/// error is rethrown once all are done.
inline std::vector<nlohmann::ordered_json> align_pairs(const fusion::feature_store& s,
                                                       const std::vector<fusion::store_layer>& froms,
                                                       const std::vector<fusion::store_layer>& tos,
                                                       const fusion::heldout_split& split,
                                                       const std::vector<std::string>& methods,
                                                       const align_args& args) {
  const auto total = froms.size() * tos.size();
  std::vector<nlohmann::ordered_json> results(total);
  std::vector<std::exception_ptr> failures(total);
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::mutex print;
  auto work = [&] {
    for (std::size_t k; (k = next++) < total;) {
      const auto& a = froms[k / tos.size()];
      const auto& b = tos[k % tos.size()];
      try {
        results[k] = align_pair(s, a, b, split, methods, args);
      } catch (...) {
        failures[k] = std::current_exception();
        continue;
      }
      if (args.quiet) continue;
      const auto& p = results[k];
      std::string line = fmt::format("align {}:{} -> {}:{} ({} train, {} held-out rows):", s.teacher_name(a.teacher),
                                     a.key, s.teacher_name(b.teacher), b.key, p["rows"]["train"].get<std::int64_t>(),
                                     p["rows"]["heldout"].get<std::int64_t>());
      for (const auto& m : methods)
        line += fmt::format(" {} R² {:.3f} cos {:.3f}", m, p["methods"][m]["r2"].get<double>(),
                            p["methods"][m]["cosine"].get<double>());
      const std::lock_guard lock(print);
      fmt::print("[{}/{}] {}\n", ++done, total, line);
      std::fflush(stdout);
    }
  };
  {
    std::vector<std::jthread> pool;
    for (int t = 1; t < std::max(1, args.threads); ++t) pool.emplace_back(work);
    work();
  }
  for (std::size_t k = 0; k < total; ++k)
    if (failures[k]) std::rethrow_exception(failures[k]);
  return results;
}

/// With --all-layers: the layer × layer grid of held-out R² per method in the report, and a heat map per
/// method beside it: REPORT.<method>.png, R² on a 0..1 scale (below 0 is 0).
inline void add_grids(nlohmann::ordered_json& report, const fusion::feature_store& s,
                      const std::vector<fusion::store_layer>& froms, const std::vector<fusion::store_layer>& tos,
                      const std::vector<std::string>& methods, const align_args& args) {
  nlohmann::ordered_json grids = nlohmann::ordered_json::object();
  std::vector<std::string> rows, cols;
  for (const auto& a : froms) rows.push_back(a.key);
  for (const auto& b : tos) cols.push_back(b.key);
  for (const auto& m : methods) {
    auto grid = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < froms.size(); ++i) {
      std::vector<double> row;
      for (std::size_t j = 0; j < tos.size(); ++j)
        row.push_back(report["pairs"][i * tos.size() + j]["methods"][m]["r2"].get<double>());
      grid.push_back(row);
    }
    grids[m] = {{"rows", rows}, {"columns", cols}, {"heldout_r2", grid}};
  }
  report["grids"] = grids;
  auto short_name = [](const std::string& key) { return key.starts_with("layer") ? key.substr(5) : key; };
  for (const auto& m : methods) {
    chart::heat_map_spec h;
    h.title = m + " held-out R2";
    h.row_label = s.teacher_name(froms.front().teacher) + " layer";
    h.col_label = s.teacher_name(tos.front().teacher) + " layer";
    for (const auto& r : rows) h.row_names.push_back(short_name(r));
    for (const auto& c : cols) h.col_names.push_back(short_name(c));
    for (const auto& row : grids[m]["heldout_r2"])
      for (const auto& v : row) h.values.push_back(v.get<double>());
    const auto png = std::filesystem::path(args.out).replace_extension("").string() + "." + m + ".png";
    chart::heat_map(png, h);
    report["heat_maps"][m] = std::filesystem::path(png).filename().string();
  }
}

inline int align_store(const align_args& args) {
  using namespace fusion;
  const auto started = std::chrono::steady_clock::now();
  const feature_store s(args.store);
  std::vector<std::string> methods;
  if (args.method == "all") methods = align_methods();
  else methods.push_back(args.method);
  const auto [froms, tos] = layers_to_align(s, args);
  const heldout_split split(s);
  if (!split.usable())
    throw usage_error(args.store, "the store has one document of one window: nothing can be held out");

  nlohmann::ordered_json report = {{"format", "nexus.align"}, {"version", 1}, {"store", args.store}};
  report["teachers"] = {{"from", s.teacher_name(froms.front().teacher)}, {"to", s.teacher_name(tos.front().teacher)}};
  report["split"] = {{"by", split.by_document() ? "document" : "window"}, {"heldout_fraction", 0.2}};
  report["methods"] = methods;
  report["pairs"] = nlohmann::ordered_json::array();
  for (auto& pair : align_pairs(s, froms, tos, split, methods, args)) report["pairs"].push_back(std::move(pair));
  if (args.all_layers) add_grids(report, s, froms, tos, methods, args);
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::ofstream out(args.out, std::ios::binary);
  if (!out) throw io_error(args.out, "cannot write the report");
  out << report.dump(2) << "\n";
  if (!out) throw io_error(args.out, "write failed");
  if (args.json) fmt::print("{}\n", report.dump(2));
  else fmt::print("align: {} pair(s), {} method(s) -> {}\n", froms.size() * tos.size(), methods.size(), args.out);
  return 0;
}

class align_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand(
        "align",
        "Closed-form maps between two teachers' hidden states in a feature store, scored on held-out documents");
    sub_->add_option("--store", a_.store, "feature store folder (nexus extract)")->required();
    sub_->add_option("--from", a_.from, "TEACHER:LAYER mapped from, e.g. 0:6 or NAME:-1 (teacher by index or name)")
        ->required();
    sub_->add_option("--to", a_.to, "TEACHER:LAYER mapped to, e.g. 1:final")->required();
    sub_->add_option("--method", a_.method, "ridge, procrustes, cca, ot or all")
        ->check(CLI::IsMember({"ridge", "procrustes", "cca", "ot", "all"}));
    sub_->add_flag("--all-layers", a_.all_layers,
                   "every stored layer of the two teachers against every other (--from/--to name the teachers)");
    sub_->add_option("--layers-from", a_.layers_from,
                     "with --all-layers: only these stored layers of the --from teacher, e.g. 0,4,8,-1,final")
        ->delimiter(',');
    sub_->add_option("--layers-to", a_.layers_to, "with --all-layers: only these stored layers of the --to teacher")
        ->delimiter(',');
    sub_->add_option("--epsilon", a_.epsilon, "entropic regularisation of the OT method")
        ->check(CLI::Range(1e-6, 10.0));
    sub_->add_option("--threads", a_.threads, "layer pairs fitted at once (each single-threaded)")
        ->check(CLI::Range(1, 1024));
    sub_->add_option("--batch-rows", a_.batch_rows, "rows read at a time")->check(CLI::Range(1, 1 << 24));
    sub_->add_option("--out", a_.out, "report (JSON)")->required();
    sub_->add_flag("--quiet", a_.quiet, "no line per pair");
    sub_->add_flag("--json", a_.json, "print the report (what --out holds) instead of lines (implies --quiet)");
  }

  int run() override {
    if (a_.json) a_.quiet = true;
    return align_store(a_);
  }

 private:
  align_args a_;
};

}  // namespace nexus::cli
