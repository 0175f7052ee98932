// `nexus eval` (fusion/evaluation): the corpus reader names every bad file; the paired bootstrap
// matches its distribution where that is known exactly; the verdicts follow the margin; the fitted
// temperature equals its closed form; and on the skill teachers' corpus (tests/data/eval_corpus), where
// each teacher is built to be the better one on its own domain, the report says so.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "nexus/fusion/evaluation/eval.hpp"
#include "reference.hpp"

namespace fs = std::filesystem;
using nexus::test::temp_dir;
using namespace nexus::fusion;

namespace {

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

/// A corpus of one domain with a dev and a test document.
void good_corpus(const fs::path& dir) {
  write(dir / "prose" / "dev" / "a.txt", "one document\n");
  write(dir / "prose" / "test" / "b.txt", "another one\n");
}

/// The adder and facts skill teachers (tests/data/skills) as one system, unfitted.
fused_system skill_system(const temp_dir& d) {
  const fs::path skills = fs::path(NEXUS_TEST_DATA) / "skills";
  bundle_manifest m;
  for (const char* name : {"adder", "facts"}) {
    const auto dg = digest_teacher(skills / name);
    m.teachers.push_back({name, name, dg.sha256, dg.bytes, {teacher_source::kind::path, (skills / name).string()}});
  }
  write_bundle(d.path / "two.nexus", m, {});
  return load_bundle(d.path / "two.nexus");
}

std::string error_of(const fs::path& dir) {
  try {
    (void)read_eval_corpus(dir);
  } catch (const nexus::error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("eval corpus: read in name order, every bad file named", "[eval]") {
  temp_dir d;
  good_corpus(d.path);
  write(d.path / "prose" / "test" / "a.txt", "first by name\n");
  write(d.path / "prose" / "test" / "notes.md", "not a document");
  const auto c = read_eval_corpus(d.path);
  REQUIRE(c.domains == std::vector<std::string>{"prose"});
  REQUIRE(c.dev.size() == 1);
  REQUIRE(c.test.size() == 2);
  CHECK(c.test[0].path == "prose/test/a.txt");
  CHECK(c.test[1].text == "another one\n");

  CHECK_THAT(error_of(d.path / "nothing"), Catch::Contains("nothing: no such corpus folder"));
  temp_dir missing;
  write(missing.path / "code" / "dev" / "a.txt", "x = 1\n");
  CHECK_THAT(error_of(missing.path), Catch::Contains("code/test: domain 'code' has no test folder"));
  temp_dir empty_split;
  good_corpus(empty_split.path);
  fs::create_directories(empty_split.path / "code" / "dev");
  write(empty_split.path / "code" / "dev" / "x.txt", "x = 1\n");
  fs::create_directories(empty_split.path / "code" / "test");
  CHECK_THAT(error_of(empty_split.path), Catch::Contains("code/test: no documents"));
  temp_dir empty_doc;
  good_corpus(empty_doc.path);
  write(empty_doc.path / "prose" / "test" / "c.txt", "");
  CHECK_THAT(error_of(empty_doc.path), Catch::Contains("prose/test/c.txt: empty document"));
  temp_dir bad_utf8;
  good_corpus(bad_utf8.path);
  write(bad_utf8.path / "prose" / "dev" / "c.txt", "caf\xc3(\n");
  CHECK_THAT(error_of(bad_utf8.path), Catch::Contains("prose/dev/c.txt: not valid UTF-8 at byte 3"));
  temp_dir nothing;
  CHECK_THAT(error_of(nothing.path), Catch::Contains("no domain folders"));
}

TEST_CASE("paired bootstrap: exact where its distribution is known; verdicts by the margin", "[eval]") {
  // Every document 10% better: every resample is too, the interval is a point.
  const std::vector<double> a = {0.9, 1.8, 2.7}, b = {1, 2, 3};
  const auto r = paired_bootstrap(a, b, 500, 1);
  CHECK(r.relative == Approx(-0.1).margin(1e-15));
  CHECK(r.low == Approx(-0.1).margin(1e-15));
  CHECK(r.high == Approx(-0.1).margin(1e-15));
  // Two documents: a resample is {1,1}, {1,2} or {2,2} (probabilities 1/4, 1/2, 1/4), so the 2.5th and
  // 97.5th percentiles are the smallest and largest of a1/b1, (a1+a2)/(b1+b2), a2/b2 (each minus one).
  const std::vector<double> a2 = {1.0, 3.3}, b2 = {1.25, 3.0};
  const auto r2 = paired_bootstrap(a2, b2, 4000, 7);
  CHECK(r2.relative == Approx(4.3 / 4.25 - 1));
  CHECK(r2.low == Approx(1.0 / 1.25 - 1));
  CHECK(r2.high == Approx(3.3 / 3.0 - 1));
  CHECK(paired_bootstrap(a2, b2, 4000, 7).low == r2.low);  // the same seed, the same interval
  CHECK_THROWS_AS(paired_bootstrap(a, b2), nexus::usage_error);

  CHECK(judge({-0.02, -0.03, -0.001}, 0.005) == eval_verdict::better);
  CHECK(judge({0.0, -0.01, 0.004}, 0.005) == eval_verdict::non_inferior);
  CHECK(judge({0.0, -0.01, 0.006}, 0.005) == eval_verdict::worse);
}

TEST_CASE("fitted temperature: the closed form of a two-level distribution", "[eval]") {
  // Every position: probability q on one outcome, r on each of the 256 others. The observed byte is the
  // likely one at a share f of the positions; the best β = 1/t makes the tempered q equal f:
  // (q/r)^β = 256 f / (1 − f).
  const double q = 0.6, r = (1 - q) / 256;
  development_set dev;
  dev.rows.emplace_back();
  std::string text;
  for (int i = 0; i < 40; ++i) {
    const unsigned char likely = static_cast<unsigned char>('a' + i % 20);
    const bool hit = i % 4 != 0;  // f = 3/4
    text += char(hit ? likely : 'z');
    for (std::size_t k = 0; k < 257; ++k) dev.rows[0].push_back(float(k == likely ? q : r));
  }
  dev.examples.push_back({"", text});
  const double f = 0.75, qf = double(float(q)), rf = double(float(r));
  const double beta = std::log(256 * f / (1 - f)) / std::log(qf / rf);
  CHECK(fit_temperature(dev, 0) == Approx(1 / beta).epsilon(1e-6));
  CHECK(best_on_development(dev) == 0);
  const auto p = tempered(dev.at(0, 0), 1.0);
  CHECK(p[0] == Approx(dev.at(0, 0)[0]).epsilon(1e-6));  // renormalised: the rows are floats
}

TEST_CASE("summarise: verdicts per domain as constructed, oracle from the test domains", "[eval]") {
  // Teachers A and B; domain `a` where A is best and the mixture 10% better; `b` where B is best and
  // the mixture 0.2% worse everywhere (non-inferior at 0.5%); `c` where A is best and the mixture 2% worse.
  eval_scores s;
  s.methods = {"A", "B", "mixture"};
  s.teachers = 2;
  auto add = [&](const char* domain, double A, double B, double mix) {
    s.documents.push_back({domain, std::string(domain) + "/test/x.txt", std::string(100, 'x')});
    s.nats.push_back({A, B, mix});
  };
  for (int i = 1; i <= 6; ++i) {
    add("a", 10 * i, 12 * i, 9 * i);
    add("b", 13 * i, 10 * i, 10.02 * i);
    add("c", 10 * i, 11 * i, 10.2 * i);
  }
  eval_options o;  // (not designated: GCC 12 warns of its std::function members)
  o.resamples = 500;
  const auto r = summarise(s, o);
  REQUIRE(r.domains.size() == 3);
  REQUIRE(r.methods.back() == oracle_method);
  const auto mix = std::size_t(2);
  CHECK(r.domains[0].best_teacher == 0);
  CHECK(r.domains[1].best_teacher == 1);
  CHECK(r.domains[0].versus[mix]->verdict == eval_verdict::better);
  CHECK(r.domains[0].versus[mix]->interval.relative == Approx(-0.1));
  CHECK(r.domains[1].versus[mix]->verdict == eval_verdict::non_inferior);
  CHECK(r.domains[2].versus[mix]->verdict == eval_verdict::worse);
  CHECK(!r.domains[0].versus[0]);  // the best teacher against itself: nothing
  // The oracle takes A on a and c, B on b: 21·(10 + 10 + 10) nats over all.
  CHECK(r.overall.bits_per_byte.back() == Approx(21 * 30 / (1800 * std::log(2.0))));
  const auto j = to_json(r);
  CHECK(j["domains"]["b"]["verdict"] == "non-inferior");
  CHECK(j["domains"]["c"]["best_teacher"] == "A");
  CHECK(j["overall"]["default"] == "mixture");
  o.default_method = "cascade";
  CHECK_THROWS_AS(summarise(s, o), nexus::usage_error);
}

TEST_CASE("eval on the skill teachers: each is best on its own domain, the mixture never worse", "[eval][skills]") {
  temp_dir d;
  auto sys = skill_system(d);
  const auto corpus = read_eval_corpus(fs::path(NEXUS_TEST_DATA) / "eval_corpus");
  const eval_options o;  // defaults, named (GCC 12 warns of a temporary's std::function members)
  const auto s = score_corpus(sys, corpus, o);
  REQUIRE(s.documents.size() == 24);
  // The scores are the teachers' own: a test document's nats under a teacher equal scoring it alone.
  const auto& doc = s.documents[0];
  const auto alone = score_bytes(sys.teachers().get(0), sys.teachers().tok(0), doc.text, false);
  CHECK(s.nats[0][0] == Approx(-alone.log_likelihood).epsilon(1e-6));
  const auto r = summarise(s, o);
  const auto j = to_json(r);
  CHECK(j["domains"]["adding"]["best_teacher"] == "adder");
  CHECK(j["domains"]["facts"]["best_teacher"] == "facts");
  CHECK(j["domains"]["adding"]["versus_best"]["facts"]["verdict"] == "worse");
  CHECK(j["domains"]["facts"]["versus_best"]["adder"]["verdict"] == "worse");
  for (const char* domain : {"adding", "facts"}) CHECK(j["domains"][domain]["verdict"] != "worse");
  CHECK(r.temperature > 0);
}

TEST_CASE("eval probes on the skill teachers: each answers its own skill best", "[eval][skills]") {
  temp_dir d;
  auto sys = skill_system(d);
  const auto dir = fs::path(NEXUS_TEST_DATA) / "eval_corpus";
  const eval_options o;
  auto s = score_corpus(sys, read_eval_corpus(dir), o);
  score_probes(sys, read_probe_tasks(dir / "probes"), s, o);
  const auto r = summarise(s, o);
  REQUIRE(r.probes.size() == 2);
  CHECK(r.probes[0].name == "adding");
  CHECK(r.methods[r.probes[0].best_teacher] == "adder");
  CHECK(r.methods[r.probes[1].best_teacher] == "facts");
  for (const auto& t : r.probes) {
    CHECK(t.items == 12);
    CHECK(t.accuracy[t.best_teacher].value > t.accuracy[1 - t.best_teacher].value);
  }
  CHECK(to_json(r)["probes"]["facts"]["best_teacher"] == "facts");
}

TEST_CASE("probes: Wilson intervals as published, bad lines named", "[eval]") {
  // Newcombe (1998), Statistics in Medicine 17:857, example: 81 of 263 gives 0.2553 to 0.3662.
  const auto w = wilson_interval(81, 263);
  CHECK(w.value == Approx(81.0 / 263));
  CHECK(w.low == Approx(0.2553).margin(5e-5));
  CHECK(w.high == Approx(0.3662).margin(5e-5));
  CHECK(wilson_interval(0, 10).low == Approx(0).margin(1e-12));
  CHECK(wilson_interval(10, 10).high == Approx(1));

  temp_dir d;
  write(d.path / "ok.jsonl", R"({"id": "a", "context": "1+1=", "choices": ["2", "3"], "answer": 0})"
                             "\n");
  const auto tasks = read_probe_tasks(d.path);
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].name == "ok");
  CHECK(tasks[0].items[0].choices[1] == "3");
  write(d.path / "zbad.jsonl", "\n{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"answer\": 2}\n");
  try {
    (void)read_probe_tasks(d.path);
    FAIL("no error");
  } catch (const nexus::usage_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("zbad.jsonl:2: needs two or more choices and an answer among them"));
  }
}
