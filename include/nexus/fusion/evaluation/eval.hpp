// `nexus eval`: a fused system measured on a corpus of domains (corpus.hpp) as a pre-registered
// benchmark asks — bits per byte of every teacher, every mode of the system and the baselines fitted on
// the development documents only (baselines.hpp), per domain and overall; each against the best teacher
// of that domain with a paired bootstrap interval over documents and a verdict by a fixed margin
// (intervals.hpp). Two steps, so each can be checked alone:
//
//   auto scores = score_corpus(sys, read_eval_corpus("corpus"), {});  // reads dev, fits, scores test
//   auto report = summarise(scores, {});                               // intervals and verdicts
//   std::cout << to_json(report).dump(2);
//
// The per-domain oracle (the best teacher of each test domain) is reported, never selectable: it
// looks at the test documents.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/fusion/evaluation/baselines.hpp"
#include "nexus/fusion/evaluation/corpus.hpp"
#include "nexus/fusion/evaluation/intervals.hpp"
#include "nexus/fusion/evaluation/probes.hpp"
#include "nexus/fusion/system/system.hpp"

namespace nexus::fusion {

struct eval_options {
  bool fit = true;                  // fit the system's parameters on the dev documents (false: keep a bundle's own)
  system_fit_options fitting = {};  // how (its progress is replaced by `progress`)
  std::string default_method = "mixture";  // the mode whose verdict is the benchmark's answer
  double margin = 0.005;                   // non-inferior: the interval's upper end at most this (relative)
  std::size_t resamples = 2000;
  std::uint64_t seed = 0;
  std::function<void(const char* stage, std::size_t done, std::size_t total)> progress = {};
};

/// Names of the baselines and the oracle among the methods.
inline constexpr const char* best_on_dev_method = "best_on_dev";
inline constexpr const char* tempered_method = "best_on_dev_tempered";
inline constexpr const char* oracle_method = "oracle";

/// What scoring produced: per test document, the nats of each method (the teachers first).
struct eval_scores {
  std::vector<std::string> methods;
  std::size_t teachers = 0;
  std::vector<eval_document> documents;   // the test documents (text kept for the per-document file's bytes)
  std::vector<std::vector<double>> nats;  // [document][method]
  std::size_t best_on_dev = 0;            // a teacher
  double temperature = 1;                 // of that teacher, fitted on dev
  std::size_t dev_documents = 0, dev_bytes = 0;
  double seconds = 0;
  struct task {
    std::string name;
    std::vector<std::size_t> answers;              // [item]
    std::vector<std::vector<std::size_t>> picked;  // [item][method]: the choice with the fewest nats
  };
  std::vector<task> probes;  // score_probes()
};

/// The nats of `text` under each method, in the order score_corpus lists them: the teachers, the
/// mixture, the cascade and the router where the system has them, the best teacher on dev, tempered.
inline std::vector<double> score_methods(fused_system& sys, std::string_view text, std::size_t best_on_dev,
                                         double temperature) {
  auto& teachers = sys.teachers();
  const auto& p = sys.parameters();
  const auto all = teacher_distributions(teachers, text);
  const auto n = score_distributions(all, text, p);
  std::vector<double> row = n.teachers;
  row.push_back(n.mixture);
  if (p.thresholds) row.push_back(*n.cascade);
  if (p.router) row.push_back(n.teachers[route_prompt(teachers, p, text)]);
  row.push_back(n.teachers[best_on_dev]);
  double tempered_nats = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    tempered_nats -= std::log(tempered(all[best_on_dev][i], temperature)[static_cast<unsigned char>(text[i])]);
  row.push_back(tempered_nats);
  return row;
}

/// Reads the dev documents through every teacher (fits the system on them when `opt.fit`), fits the
/// baselines, then scores every test document under each teacher, mode and baseline.
inline eval_scores score_corpus(fused_system& sys, const eval_corpus& corpus, const eval_options& opt = {}) {
  const auto t0 = run_clock::clock::now();
  const auto T = sys.teachers().size();
  eval_scores s;
  s.teachers = T;
  for (std::size_t t = 0; t < T; ++t) s.methods.push_back(sys.manifest().teachers[t].name);
  for (const auto* m : {"mixture", "cascade", "router", best_on_dev_method, tempered_method, oracle_method})
    if (std::find(s.methods.begin(), s.methods.end(), m) != s.methods.end())
      throw usage_error("eval", std::string("a teacher is named '") + m + "', the name of a method: rename it");

  std::vector<dev_example> dev;
  for (const auto& d : corpus.dev) dev.push_back(split_document(d.text, opt.fitting.prefix_bytes));
  auto fo = opt.fitting;
  fo.progress = [&](std::size_t done, std::size_t total) {
    if (opt.progress) opt.progress("dev", done, total);
  };
  const auto devset = sys.collect(dev, fo);
  if (opt.fit) sys.fit(devset, fo);
  s.dev_documents = devset.examples.size();
  s.dev_bytes = devset.positions();
  s.best_on_dev = best_on_development(devset);
  s.temperature = fit_temperature(devset, s.best_on_dev);

  const auto& p = sys.parameters();
  s.methods.push_back("mixture");
  if (p.thresholds) s.methods.push_back("cascade");
  if (p.router) s.methods.push_back("router");
  s.methods.push_back(best_on_dev_method);
  s.methods.push_back(tempered_method);
  if (std::find(s.methods.begin(), s.methods.end(), opt.default_method) == s.methods.end())
    throw usage_error("eval", "the default method '" + opt.default_method +
                                  "' is not one of this system's (fit a cascade or a router to use one)");
  for (std::size_t d = 0; d < corpus.test.size(); ++d) {
    s.nats.push_back(score_methods(sys, corpus.test[d].text, s.best_on_dev, s.temperature));
    s.documents.push_back(corpus.test[d]);
    if (opt.progress) opt.progress("test", d + 1, corpus.test.size());
  }
  s.seconds = run_clock::since(t0);
  return s;
}

/// Adds to `s` (scored by score_corpus) each method's answers to the probe `tasks`.
inline void score_probes(fused_system& sys, const std::vector<probe_task>& tasks, eval_scores& s,
                         const eval_options& opt = {}) {
  std::size_t total = 0, done = 0;
  for (const auto& t : tasks) total += t.items.size();
  for (const auto& t : tasks) {
    eval_scores::task out{t.name, {}, {}};
    for (const auto& item : t.items) {
      std::vector<std::vector<double>> nats;  // [choice][method]
      for (const auto& c : item.choices)
        nats.push_back(score_methods(sys, item.context + c, s.best_on_dev, s.temperature));
      std::vector<std::size_t> picked(s.methods.size(), 0);
      for (std::size_t m = 0; m < picked.size(); ++m)
        for (std::size_t c = 1; c < nats.size(); ++c)
          if (nats[c][m] < nats[picked[m]][m]) picked[m] = c;
      out.answers.push_back(item.answer);
      out.picked.push_back(std::move(picked));
      if (opt.progress) opt.progress("probes", ++done, total);
    }
    s.probes.push_back(std::move(out));
  }
}

/// One method against the best teacher of a group of documents.
struct eval_comparison {
  relative_interval interval;
  eval_verdict verdict = eval_verdict::worse;
};

/// A domain (or all of them): bits per byte of each method, and each against the best teacher.
struct eval_group {
  std::string name;
  std::size_t documents = 0, bytes = 0;
  std::vector<double> bits_per_byte;                   // by method of the report
  std::size_t best_teacher = 0;                        // on these test documents
  std::vector<std::optional<eval_comparison>> versus;  // by method; none for the best teacher itself
};

struct eval_report {
  std::vector<std::string> methods;  // the scores' methods, then the oracle
  std::size_t teachers = 0, default_method = 0, best_on_dev = 0;
  double temperature = 1, margin = 0;
  std::size_t resamples = 0;
  std::uint64_t seed = 0;
  std::vector<eval_group> domains;
  eval_group overall;
  struct task {
    std::string name;
    std::size_t items = 0, best_teacher = 0;  // the teacher with the most right answers
    std::vector<proportion> accuracy;         // by method (not the oracle)
    bool kept = false;  // the default's accuracy at least the lower end of the best teacher's interval
  };
  std::vector<task> probes;
};

/// Bits per byte, best teacher and intervals for each domain and overall. The oracle's nats of a
/// document are those of the best teacher of its domain.
inline eval_report summarise(const eval_scores& s, const eval_options& opt = {}) {
  if (s.documents.empty() || s.nats.size() != s.documents.size())
    throw usage_error("eval", "no scored test documents to summarise");
  eval_report r;
  r.methods = s.methods;
  r.methods.push_back(oracle_method);
  r.teachers = s.teachers;
  r.best_on_dev = s.best_on_dev;
  r.temperature = s.temperature;
  r.margin = opt.margin;
  r.resamples = opt.resamples;
  r.seed = opt.seed;
  const auto it = std::find(r.methods.begin(), r.methods.end(), opt.default_method);
  if (it == r.methods.end() || opt.default_method == oracle_method)
    throw usage_error("eval", "the default method '" + opt.default_method + "' is not one of this system's");
  r.default_method = std::size_t(it - r.methods.begin());
  const auto M = r.methods.size(), oracle = M - 1;

  std::map<std::string, std::vector<std::size_t>> by_domain;
  for (std::size_t d = 0; d < s.documents.size(); ++d) by_domain[s.documents[d].domain].push_back(d);
  auto total = [&](const std::vector<std::size_t>& docs, std::size_t m) {
    double n = 0;
    for (const auto d : docs) n += s.nats[d][m];
    return n;
  };
  auto best_teacher = [&](const std::vector<std::size_t>& docs) {
    std::size_t best = 0;
    for (std::size_t t = 1; t < s.teachers; ++t)
      if (total(docs, t) < total(docs, best)) best = t;
    return best;
  };
  std::vector<std::vector<double>> nats(s.documents.size());  // with the oracle's column
  for (const auto& [domain, docs] : by_domain) {
    const auto b = best_teacher(docs);
    for (const auto d : docs) (nats[d] = s.nats[d]).push_back(s.nats[d][b]);
  }
  auto group = [&](const std::string& name, const std::vector<std::size_t>& docs) {
    eval_group g;
    g.name = name;
    g.documents = docs.size();
    for (const auto d : docs) g.bytes += s.documents[d].text.size();
    g.best_teacher = best_teacher(docs);
    std::vector<double> best, other;
    for (const auto d : docs) best.push_back(nats[d][g.best_teacher]);
    for (std::size_t m = 0; m < M; ++m) {
      other.clear();
      for (const auto d : docs) other.push_back(nats[d][m]);
      double sum = 0;
      for (const double v : other) sum += v;
      g.bits_per_byte.push_back(sum / (double(g.bytes) * std::log(2.0)));
      if (m == g.best_teacher || (m == oracle && name != "overall")) {  // the same numbers: no interval to draw
        g.versus.emplace_back();
        continue;
      }
      const auto iv = paired_bootstrap(other, best, opt.resamples, opt.seed);
      g.versus.push_back(eval_comparison{iv, judge(iv, opt.margin)});
    }
    return g;
  };
  std::vector<std::size_t> all(s.documents.size());
  for (std::size_t d = 0; d < all.size(); ++d) all[d] = d;
  for (const auto& [domain, docs] : by_domain) r.domains.push_back(group(domain, docs));
  r.overall = group("overall", all);
  for (const auto& t : s.probes) {
    eval_report::task out;
    out.name = t.name;
    out.items = t.answers.size();
    for (std::size_t m = 0; m < s.methods.size(); ++m) {
      std::size_t right = 0;
      for (std::size_t i = 0; i < t.answers.size(); ++i) right += t.picked[i][m] == t.answers[i];
      out.accuracy.push_back(wilson_interval(right, out.items));
    }
    for (std::size_t k = 1; k < s.teachers; ++k)
      if (out.accuracy[k].value > out.accuracy[out.best_teacher].value) out.best_teacher = k;
    out.kept = r.default_method < out.accuracy.size() &&
               out.accuracy[r.default_method].value >= out.accuracy[out.best_teacher].low;
    r.probes.push_back(std::move(out));
  }
  return r;
}

/// The report as JSON: {"domains": {name: group}, "overall": group, ...} where a group is
/// {"documents", "bytes", "bits_per_byte": {method: x}, "best_teacher", "default",
///  "default_minus_best": {"relative", "low", "high"}, "verdict", "versus_best": {method: {...,"verdict"}}}.
inline nlohmann::ordered_json to_json(const eval_report& r) {
  auto group = [&](const eval_group& g) {
    nlohmann::ordered_json j;
    j["documents"] = g.documents;
    j["bytes"] = g.bytes;
    auto bpb = nlohmann::ordered_json::object();
    for (std::size_t m = 0; m < r.methods.size(); ++m) bpb[r.methods[m]] = g.bits_per_byte[m];
    j["bits_per_byte"] = std::move(bpb);
    j["best_teacher"] = r.methods[g.best_teacher];
    j["default"] = r.methods[r.default_method];
    auto interval = [](const eval_comparison& c) {
      return nlohmann::ordered_json{{"relative", c.interval.relative},
                                    {"low", c.interval.low},
                                    {"high", c.interval.high},
                                    {"verdict", name_of(c.verdict)}};
    };
    const auto& d = g.versus[r.default_method];
    const eval_comparison same{};  // the default is the best teacher itself: no difference
    auto dj = interval(d ? *d : same);
    j["verdict"] = d ? name_of(d->verdict) : "non-inferior";
    dj.erase("verdict");
    j["default_minus_best"] = std::move(dj);
    auto versus = nlohmann::ordered_json::object();
    for (std::size_t m = 0; m < r.methods.size(); ++m)
      if (g.versus[m]) versus[r.methods[m]] = interval(*g.versus[m]);
    j["versus_best"] = std::move(versus);
    return j;
  };
  nlohmann::ordered_json j;
  auto domains = nlohmann::ordered_json::object();
  for (const auto& g : r.domains) domains[g.name] = group(g);
  j["domains"] = std::move(domains);
  j["overall"] = group(r.overall);
  if (!r.probes.empty()) {
    auto probes = nlohmann::ordered_json::object();
    for (const auto& t : r.probes) {
      auto acc = nlohmann::ordered_json::object();
      for (std::size_t m = 0; m < t.accuracy.size(); ++m)
        acc[r.methods[m]] = {
            {"accuracy", t.accuracy[m].value}, {"low", t.accuracy[m].low}, {"high", t.accuracy[m].high}};
      probes[t.name] = {{"items", t.items},
                        {"accuracy", std::move(acc)},
                        {"best_teacher", r.methods[t.best_teacher]},
                        {"default", r.methods[r.default_method]},
                        {"kept", t.kept}};
    }
    j["probes"] = std::move(probes);
  }
  j["methods"] = r.methods;
  j["best_on_dev"] = r.methods[r.best_on_dev];
  j["temperature"] = r.temperature;
  j["margin"] = r.margin;
  j["interval"] = {{"method", "paired bootstrap over documents, percentile"},
                   {"level", 0.95},
                   {"resamples", r.resamples},
                   {"seed", r.seed}};
  return j;
}

/// One JSON line per test document: its domain, path, bytes and the nats of each method.
inline std::string per_document_jsonl(const eval_scores& s) {
  std::string out;
  for (std::size_t d = 0; d < s.documents.size(); ++d) {
    nlohmann::ordered_json j;
    j["domain"] = s.documents[d].domain;
    j["path"] = s.documents[d].path;
    j["bytes"] = s.documents[d].text.size();
    auto n = nlohmann::ordered_json::object();
    for (std::size_t m = 0; m < s.methods.size(); ++m) n[s.methods[m]] = s.nats[d][m];
    j["nats"] = std::move(n);
    out += j.dump() + "\n";
  }
  return out;
}

}  // namespace nexus::fusion
