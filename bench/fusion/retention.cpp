// The retention benchmark (issue 16; bench/fusion/retention.sh runs it): two or more teachers as one
// bundle, fitted on the development part of a corpus of several domains, measured on its test part:
// bits per byte per domain and overall for each teacher alone, the per-document oracle, the linear,
// log-linear and fixed-share mixtures, the router and the cascade (with its share of escalations), and the speed of
// each; the cascade's quality against its share as a curve. The cascade and the router are also run as
// they save work (fused_system::run: the cascade reads its later teacher only where reached, the
// router only the teacher it picks), timed against the mixture, which reads every teacher; the
// cascade's share is chosen by cross-validation on the development documents (fit.hpp), never on test.
// Writes JSON and two PNG charts.
//
//   retention --teacher A.gguf --teacher B.gguf --corpus retention_corpus.jsonl --out PREFIX
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "nexus/chart/plot.hpp"
#include "nexus/fusion/system/system.hpp"

using namespace nexus;
using namespace nexus::fusion;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct document {
  std::string domain, split, text;
};

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Nats and bytes of one method, per domain and overall.
struct tally {
  std::map<std::string, std::pair<double, double>> by_domain;
  void add(const std::string& domain, double nats, double bytes) {
    by_domain[domain].first += nats, by_domain[domain].second += bytes;
    by_domain["overall"].first += nats, by_domain["overall"].second += bytes;
  }
  double bits(const std::string& d) const {
    const auto& [n, b] = by_domain.at(d);
    return n / (b * std::log(2.0));
  }
};

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app("Retention benchmark of a fused system (issue 16)");
  std::vector<std::string> teacher_paths, names;
  std::string corpus, out;
  std::int64_t prefix_bytes = 64;
  int threads = 0;
  app.add_option("--teacher", teacher_paths, "teacher checkpoints, cheapest first is not required")->required();
  app.add_option("--name", names, "a name per teacher");
  app.add_option("--corpus", corpus, "JSON lines {domain, split: dev|test, text}")->required();
  app.add_option("--out", out, "output prefix: PREFIX.json, PREFIX.domains.png, PREFIX.cascade.png")->required();
  app.add_option("--prefix-bytes", prefix_bytes, "bytes of a document the router reads");
  app.add_option("--threads", threads, "CPU threads (0: all)");
  CLI11_PARSE(app, argc, argv);

  std::vector<document> docs;
  {
    std::ifstream in(corpus);
    if (!in) throw io_error(corpus, "cannot read the corpus");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) {
        const auto j = nlohmann::json::parse(line);
        docs.push_back({j.at("domain"), j.at("split"), j.at("text")});
      }
  }
  // The bundle: the teachers by path, beside the output.
  bundle_manifest m;
  for (std::size_t i = 0; i < teacher_paths.size(); ++i) {
    const auto p = fs::absolute(teacher_paths[i]);
    const auto d = digest_teacher(p);
    m.teachers.push_back({i < names.size() ? names[i] : p.stem().string(),
                          p.filename().string(),
                          d.sha256,
                          d.bytes,
                          {teacher_source::kind::path, p.string()}});
  }
  const auto bundle_path = fs::path(out + ".nexus");
  write_bundle(bundle_path, m, {});
  auto sys = load_bundle(bundle_path, {.cpu = {.threads = threads}});
  const auto T = sys.teachers().size();

  // Development: every teacher reads each document once; both mixture kinds, router and cascade fitted.
  std::vector<dev_example> dev;
  for (const auto& d : docs)
    if (d.split == "dev") dev.push_back(split_document(d.text, prefix_bytes));
  system_fit_options fo;
  fo.prefix_bytes = prefix_bytes;
  fo.progress = [](std::size_t done, std::size_t total) { fmt::print(stderr, "\rdev {}/{}", done, total); };
  auto t0 = clock_type::now();
  const auto devset = sys.collect(dev, fo);
  const double dev_seconds = seconds_since(t0);
  fo.kind = mixture_kind::log_linear;
  const auto log_linear = sys.fit(devset, fo).mixture.weights;
  fo.kind = mixture_kind::fixed_share;
  const auto fixed_share = sys.fit(devset, fo).mixture.weights;
  fo.kind = mixture_kind::linear;  // the cascade escalates to the linear mixture; its share by cross-validation
  const auto fitted = sys.fit(devset, fo);
  // The baseline the router must beat: always the teacher best on the development documents.
  std::size_t best_dev = 0;
  {
    std::vector<double> dev_nats(T, 0.0);
    const auto data = mixture_data(devset);
    for (std::int64_t i = 0; i < data.positions(); ++i)
      for (std::size_t t = 0; t < T; ++t)
        dev_nats[t] -= std::log(data.dist(i, std::int64_t(t))[std::size_t(data.observed[std::size_t(i)])]);
    best_dev = std::size_t(std::min_element(dev_nats.begin(), dev_nats.end()) - dev_nats.begin());
  }
  const auto linear = fitted.mixture.weights;
  sys.save(bundle_path);
  fmt::print(stderr, "\n");

  // Test.
  tally teacher_t[8], oracle, lin, loglin, shared, routed, cascade, lazy_cascade, lazy_router, best_dev_teacher;
  if (T > 8) throw usage_error("retention", "at most 8 teachers");
  std::vector<double> teacher_seconds(T, 0.0), canonical_seconds(T, 0.0);
  std::vector<std::size_t> canonical_tokens(T, 0);
  double mix_seconds = 0, routed_seconds = 0, escalated = 0, test_bytes = 0, routed_right = 0, test_docs = 0;
  double cascade_run_seconds = 0, router_run_seconds = 0, router_chosen_alone_seconds = 0, lazy_escalated = 0;
  std::vector<double> cascade_teacher_seconds(T, 0.0), cascade_bytes_read(T, 0.0), cascade_bytes_decided(T, 0.0);
  position_data test_positions;
  nlohmann::ordered_json per_doc = nlohmann::ordered_json::array();
  for (const auto& d : docs) {
    if (d.split != "test") continue;
    fmt::print(stderr, "\rtest {}   ", ++test_docs);
    std::vector<double> secs;
    const auto all = sys.distributions(d.text, &secs);
    for (std::size_t t = 0; t < T; ++t) {
      teacher_seconds[t] += secs[t];
      t0 = clock_type::now();
      std::size_t tokens = 0;
      (void)canonical_log_likelihood(sys.teachers().get(t), sys.teachers().tok(t), d.text, false, &tokens);
      canonical_seconds[t] += seconds_since(t0);
      canonical_tokens[t] += tokens;
    }
    t0 = clock_type::now();
    // The system's own mixture is the linear one (fitted last); the other kinds are read alongside.
    const auto n = score_distributions(all, d.text, sys.parameters(), &test_positions);
    const auto& nats = n.teachers;
    const double n_lin = n.mixture, n_cas = n.cascade.value_or(0.0);
    const double n_ll = mixture_nats(all, d.text, mixture_kind::log_linear, log_linear);
    const double n_fs = mixture_nats(all, d.text, mixture_kind::fixed_share, fixed_share);
    escalated += double(n.escalated);
    mix_seconds += seconds_since(t0);
    t0 = clock_type::now();
    const auto route = sys.route(d.text);
    routed_seconds += seconds_since(t0) + secs[route];  // the router's features, then the teacher it picks
    const auto best = std::size_t(std::min_element(nats.begin(), nats.end()) - nats.begin());
    routed_right += route == best;
    // The modes as they save work.
    const auto c = sys.run(system_mode::cascade, d.text);
    cascade_run_seconds += c.seconds;
    lazy_escalated += double(c.escalated);
    for (std::size_t t = 0; t < T; ++t) {
      cascade_teacher_seconds[t] += c.teachers[t].seconds;
      cascade_bytes_read[t] += double(c.teachers[t].bytes_read);
      cascade_bytes_decided[t] += double(c.teachers[t].bytes_decided);
    }
    const auto r = sys.run(system_mode::router, d.text);
    router_run_seconds += r.seconds;
    router_chosen_alone_seconds += secs[*r.routed];
    const double bytes = double(d.text.size());
    lazy_cascade.add(d.domain, c.nats, bytes);
    lazy_router.add(d.domain, r.nats, bytes);
    best_dev_teacher.add(d.domain, nats[best_dev], bytes);
    test_bytes += bytes;
    for (std::size_t t = 0; t < T; ++t) teacher_t[t].add(d.domain, nats[t], bytes);
    oracle.add(d.domain, nats[best], bytes);
    lin.add(d.domain, n_lin, bytes);
    loglin.add(d.domain, n_ll, bytes);
    shared.add(d.domain, n_fs, bytes);
    routed.add(d.domain, nats[route], bytes);
    cascade.add(d.domain, n_cas, bytes);
    per_doc.push_back({{"domain", d.domain}, {"bytes", d.text.size()}, {"routed", route}, {"oracle", best}});
  }
  fmt::print(stderr, "\n");

  // Report.
  std::vector<std::string> domains;
  for (const auto& [k, v] : oracle.by_domain)
    if (k != "overall") domains.push_back(k);
  domains.push_back("overall");
  std::vector<std::pair<std::string, const tally*>> methods;
  for (std::size_t t = 0; t < T; ++t) methods.push_back({m.teachers[t].name, &teacher_t[t]});
  methods.push_back({"oracle (per document)", &oracle});
  methods.push_back({"linear mixture", &lin});
  methods.push_back({"log-linear mixture", &loglin});
  methods.push_back({"fixed-share mixture", &shared});
  methods.push_back({"router", &routed});
  methods.push_back({"cascade", &cascade});
  methods.push_back({"cascade (run lazily)", &lazy_cascade});
  methods.push_back({"router (run alone)", &lazy_router});
  methods.push_back({"best teacher on dev", &best_dev_teacher});
  nlohmann::ordered_json j;
  j["corpus"] = corpus;
  j["teachers"] = nlohmann::ordered_json::array();
  double teacher_total_seconds = 0;
  for (std::size_t t = 0; t < T; ++t) {
    teacher_total_seconds += teacher_seconds[t];
    j["teachers"].push_back({{"name", m.teachers[t].name},
                             {"file", teacher_paths[t]},
                             {"sha256", m.teachers[t].sha256},
                             {"byte_level_seconds", teacher_seconds[t]},
                             {"byte_level_bytes_per_second", test_bytes / teacher_seconds[t]},
                             {"canonical_tokens", canonical_tokens[t]},
                             {"canonical_tokens_per_second", double(canonical_tokens[t]) / canonical_seconds[t]}});
  }
  j["fit"] = {{"dev_documents", dev.size()},
              {"dev_bytes", fitted.positions},
              {"dev_seconds", dev_seconds},
              {"linear_weights", linear},
              {"log_linear_weights", log_linear},
              {"fixed_share_prior_and_alpha", fixed_share},
              {"cascade_order", sys.cascade_order()},
              {"cascade_thresholds", *sys.cascade_thresholds()},
              {"router_lambda", fitted.router ? fitted.router->lambda : 0.0},
              {"router_heldout_r2", fitted.router ? fitted.router->heldout_r2 : 0.0}};
  if (fitted.cascade_selection) {
    const auto& cs = *fitted.cascade_selection;
    auto curve_j = nlohmann::ordered_json::array();
    for (const auto& p : cs.curve)
      curve_j.push_back({{"target_share", p.target_share},
                         {"escalated_share", p.escalated_share},
                         {"bits_per_byte", p.bits_per_byte}});
    j["fit"]["cascade_selection"] = {{"folds", cs.folds},
                                     {"tolerance", cs.tolerance},
                                     {"mixture_bits_per_byte", cs.mixture_bits_per_byte},
                                     {"chosen_share", cs.curve[cs.chosen].target_share},
                                     {"curve", curve_j}};
  }
  if (fitted.router)
    j["fit"]["router_selection"] = {{"folds", fitted.router->folds},
                                    {"routed_nats_per_byte", fitted.router->routed_loss},
                                    {"best_teacher_nats_per_byte", fitted.router->constant_loss},
                                    {"constant", fitted.router->constant}};
  j["fit"]["best_teacher_on_dev"] = m.teachers[best_dev].name;
  j["test_bytes"] = test_bytes;
  j["bits_per_byte"] = nlohmann::ordered_json::object();
  for (const auto& [name, t] : methods) {
    nlohmann::ordered_json row;
    for (const auto& d : domains) row[d] = t->bits(d);
    j["bits_per_byte"][name] = row;
  }
  j["cascade_escalated_share"] = escalated / test_bytes;
  j["router_picks_the_oracle"] = routed_right / test_docs;
  // Time: every mode reads each teacher's byte-level distributions; a mixture adds only the mixing.
  j["seconds"] = {{"teachers_byte_level", teacher_total_seconds},
                  {"mixing_all_modes", mix_seconds},
                  {"router_features_and_routed_teacher", routed_seconds},
                  {"mixture_over_sum_of_teachers", (teacher_total_seconds + mix_seconds) / teacher_total_seconds}};
  // Bytes per second of each mode on the test part: a teacher alone; a mixture or the cascade reads
  // every teacher (the cascade as implemented evaluates all of them; its share is what a lazy one would
  // pay for the expensive teacher); the router, its features and the one teacher it picks.
  j["bytes_per_second"] = nlohmann::ordered_json::object();
  for (std::size_t t = 0; t < T; ++t) j["bytes_per_second"][m.teachers[t].name] = test_bytes / teacher_seconds[t];
  j["bytes_per_second"]["mixtures_and_cascade"] = test_bytes / (teacher_total_seconds + mix_seconds);
  j["bytes_per_second"]["router"] = test_bytes / routed_seconds;
  // The acceptance figures of issue 29, from the runs that save work.
  const double mixture_seconds = teacher_total_seconds + mix_seconds;
  auto teachers_j = nlohmann::ordered_json::array();
  for (std::size_t t = 0; t < T; ++t)
    teachers_j.push_back({{"name", m.teachers[t].name},
                          {"bytes_read", cascade_bytes_read[t]},
                          {"bytes_decided", cascade_bytes_decided[t]},
                          {"seconds", cascade_teacher_seconds[t]}});
  j["saving"] = {
      {"mixture_seconds", mixture_seconds},
      {"cascade_seconds", cascade_run_seconds},
      {"cascade_over_mixture_seconds", cascade_run_seconds / mixture_seconds},
      {"cascade_bits_per_byte", lazy_cascade.bits("overall")},
      {"mixture_bits_per_byte", lin.bits("overall")},
      {"cascade_minus_mixture_relative", lazy_cascade.bits("overall") / lin.bits("overall") - 1},
      {"cascade_escalated_share", lazy_escalated / test_bytes},
      {"cascade_teachers", teachers_j},
      {"router_seconds", router_run_seconds},
      {"router_over_chosen_teachers_alone_seconds", router_run_seconds / router_chosen_alone_seconds},
      {"router_bits_per_byte", lazy_router.bits("overall")},
      {"best_teacher_on_dev", m.teachers[best_dev].name},
      {"best_teacher_on_dev_bits_per_byte", best_dev_teacher.bits("overall")},
      {"router_minus_best_dev_teacher_relative", lazy_router.bits("overall") / best_dev_teacher.bits("overall") - 1}};
  j["per_document"] = per_doc;
  const std::vector<double> shares = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1};
  const auto curve =
      cascade_curve(cascade_data(devset, sys.cascade_order()), test_positions, shares, sys.consulted_mixer());
  j["cascade_curve"] = nlohmann::ordered_json::array();
  for (const auto& p : curve)
    j["cascade_curve"].push_back(
        {{"target_share", p.target_share}, {"escalated_share", p.escalated_share}, {"bits_per_byte", p.bits_per_byte}});
  std::ofstream(out + ".json") << j.dump(2) << "\n";

  namespace plot = nexus::chart;
  plot::heat_map_spec dom{"bits per byte (test)", "method", "domain", {}, domains, {}};
  for (const auto& [name, t] : methods) {
    dom.row_names.push_back(name);
    for (const auto& d : domains) dom.values.push_back(t->bits(d));
  }
  dom.lo = *std::min_element(dom.values.begin(), dom.values.end());
  dom.hi = *std::max_element(dom.values.begin(), dom.values.end());
  plot::heat_map(out + ".domains.png", dom);
  plot::line_chart_spec cas{
      "cascade: quality against escalations (test)", "share of bytes escalated", "bits per byte", {}, false};
  plot::line_series c{"cascade", {}, {}}, l{"linear mixture", {0, 1}, {lin.bits("overall"), lin.bits("overall")}},
      b{m.teachers[sys.cascade_order()[0]].name + " alone", {0, 1}, {}};
  for (const auto& p : curve) c.x.push_back(p.escalated_share), c.y.push_back(p.bits_per_byte);
  b.y = {teacher_t[sys.cascade_order()[0]].bits("overall"), teacher_t[sys.cascade_order()[0]].bits("overall")};
  // The chosen point (share cross-validated on dev, run lazily on test), drawn as a small diamond.
  const double cx = lazy_escalated / test_bytes, cy = lazy_cascade.bits("overall"), dx = 0.015, dy = 0.01 * cy;
  plot::line_series chosen{"chosen (share cross-validated on dev), run lazily",
                           {cx - dx, cx, cx + dx, cx, cx - dx},
                           {cy, cy + dy, cy, cy - dy, cy}};
  cas.series = {c, l, b, chosen};
  plot::line_chart(out + ".cascade.png", cas);

  fmt::print("{:<24}", "bits per byte");
  for (const auto& d : domains) fmt::print(" {:>9}", d.substr(0, 9));
  fmt::print("\n");
  for (const auto& [name, t] : methods) {
    fmt::print("{:<24}", name.substr(0, 24));
    for (const auto& d : domains) fmt::print(" {:>9.4f}", t->bits(d));
    fmt::print("\n");
  }
  fmt::print("cascade escalated {:.1f}% of test bytes; router picked the per-document best {:.0f}% of the time\n",
             100 * escalated / test_bytes, 100 * routed_right / test_docs);
  fmt::print(
      "run as they save work: cascade {:.1f} s = {:.2f}x the mixture's {:.1f} s, {:+.2f}% bits per byte; "
      "router {:.4f} vs best teacher on dev ({}) {:.4f} bits per byte, at {:.2f}x its chosen teachers' own cost\n",
      cascade_run_seconds, cascade_run_seconds / mixture_seconds, mixture_seconds,
      100 * (lazy_cascade.bits("overall") / lin.bits("overall") - 1), lazy_router.bits("overall"),
      m.teachers[best_dev].name, best_dev_teacher.bits("overall"), router_run_seconds / router_chosen_alone_seconds);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "retention: {}\n", e.what());
  return 1;
}
