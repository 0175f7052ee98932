// Synthetic-skills retention (issue 16): three tiny teachers of different families and tokenizers,
// each trained on one skill the others lack (tests/data/skills, tools/fusion/make_skill_teachers.py).
// Each alone must reproduce transformers' greedy tokens; the fused system (one bundle of the three, its
// mixture fitted on the development prompts, no teacher changed) must keep at least 99% of each
// teacher's own exact-match accuracy on its skill's held-out prompts, decoding greedily byte by byte.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "nexus/backend/cpu/model.hpp"
#include "reference.hpp"
#include "nexus/fusion/system/add_teacher.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/generate/generate.hpp"

namespace fs = std::filesystem;
using nexus::test::temp_dir;
using namespace nexus::fusion;

namespace {

const fs::path skills = fs::path(NEXUS_TEST_DATA) / "skills";
const std::vector<std::string> skill_names = {"adder", "reverser", "facts"};

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

/// Greedy tokens after the root context and `prompt` until a token whose text holds "\n", eos, or 8
/// tokens (as the reference; the root as the byte-level view has it, which the teachers were trained with).
nexus::generate_result greedy(const nexus::model& m, const nexus::tokenizer& tok, const std::string& prompt) {
  auto ids = byte_vocabulary(tok, m.arch().dims.vocab_size).root();
  const auto text = tok.encode(prompt);
  ids.insert(ids.end(), text.begin(), text.end());
  nexus::generate_options o;
  o.max_new_tokens = 8;
  if (tok.eos()) o.stop_tokens = {*tok.eos()};
  o.stop_strings = {"\n"};
  return nexus::generate(m, &tok, ids, o);
}

}  // namespace

TEST_CASE("skills: every teacher alone gives transformers' greedy tokens", "[skills]") {
  for (const auto& name : skill_names) {
    const auto dir = skills / name;
    const auto m = nexus::load_cpu_model(dir);
    const auto tok = nexus::tokenizer::load(dir);
    for (const auto& r : read_jsonl(dir / "reference.jsonl")) {
      INFO(name << ": " << r["prompt"].get<std::string>());
      CHECK(greedy(*m, tok, r["prompt"]).tokens == r["ids"].get<std::vector<std::int32_t>>());
    }
  }
}

// Mixtures alone are not enough here: the teachers that lack a skill are confidently wrong on its
// prompts. The router (fitted on the development prompts) sends each prompt to the teacher of its skill.
TEST_CASE("skills: the fused system keeps each teacher's accuracy on its own skill", "[skills-fused]") {
  temp_dir d;
  bundle_manifest m;
  for (const auto& name : skill_names) {
    const auto dg = digest_teacher(skills / name);
    m.teachers.push_back({name, name, dg.sha256, dg.bytes, {teacher_source::kind::path, (skills / name).string()}});
  }
  const auto path = d.path / "skills.nexus";
  write_bundle(path, m, {});
  {
    std::vector<dev_example> dev;
    for (const auto& name : skill_names)
      for (const auto& r : read_jsonl(skills / name / "dev.jsonl")) dev.push_back({r["prompt"], r["answer"]});
    auto sys = load_bundle(path);
    const auto f = sys.fit(dev, {.kind = mixture_kind::linear, .prefix_bytes = 16});
    REQUIRE(f.router);
    sys.save(path);
  }
  auto sys = load_bundle(path);
  for (std::size_t t = 0; t < skill_names.size(); ++t) {
    const auto dir = skills / skill_names[t];
    const auto& alone = sys.teachers().get(t);
    const auto& tok = sys.teachers().tok(t);
    const auto rows = read_jsonl(dir / "heldout.jsonl");
    std::size_t teacher_right = 0, fused_right = 0;
    for (const auto& r : rows) {
      const auto prompt = r["prompt"].get<std::string>(), answer = r["answer"].get<std::string>();
      const auto g = greedy(alone, tok, prompt);
      teacher_right += tok.decode(g.tokens, true) == answer;
      fused_right += sys.generate(prompt, {.max_bytes = 16, .stop = {"\n"}}) + "\n" == answer;  // stops are cut
    }
    INFO(skill_names[t] << ": teacher " << teacher_right << ", fused " << fused_right << " of " << rows.size());
    CHECK(teacher_right >= rows.size() * 9 / 10);  // the teacher has its skill
    CHECK(double(fused_right) >= 0.99 * double(teacher_right));
  }
}

// A teacher added to a fitted bundle: only it reads the development examples (the others' reading comes
// from the cache beside the bundle), and the refitted mixture, cascade and router are those of fitting
// all three teachers from scratch.
TEST_CASE("skills: a teacher added to a fitted bundle gives the parameters of fitting all from scratch",
          "[skills-fused]") {
  temp_dir d;
  std::vector<dev_example> dev;
  for (const auto& name : skill_names) {
    const auto rows = read_jsonl(skills / name / "dev.jsonl");
    for (std::size_t i = 0; i < 12; ++i) dev.push_back({rows[i]["prompt"], rows[i]["answer"]});
  }
  auto bundle_of = [&](std::size_t teachers, const char* file) {
    bundle_manifest m;
    for (std::size_t t = 0; t < teachers; ++t) {
      const auto dir = skills / skill_names[t];
      const auto dg = digest_teacher(dir);
      m.teachers.push_back(
          {skill_names[t], skill_names[t], dg.sha256, dg.bytes, {teacher_source::kind::path, dir.string()}});
    }
    const auto path = d.path / file;
    write_bundle(path, m, {});
    return path;
  };
  const system_fit_options opt{.kind = mixture_kind::linear, .prefix_bytes = 16};
  const auto scratch = bundle_of(skill_names.size(), "scratch.nexus");
  const auto grown = bundle_of(skill_names.size() - 1, "grown.nexus");
  load_bundle(scratch).fit_into(scratch, dev, opt);
  load_bundle(grown).fit_into(grown, dev, opt);
  const auto last = skill_names.size() - 1;
  // Another development text is refused before anything changes.
  auto other = dev;
  other.pop_back();
  CHECK_THROWS_AS(add_teacher(grown, skills / skill_names[last], skill_names[last], opt, {}, &other),
                  nexus::usage_error);
  CHECK_THROWS_AS(add_teacher(grown, skills / skill_names[0], skill_names[0], opt), nexus::usage_error);  // its name
  const auto added = add_teacher(grown, skills / skill_names[last], skill_names[last], opt, {}, &dev);
  REQUIRE(added.uses.size() == skill_names.size());
  for (std::size_t t = 0; t < last; ++t) CHECK(added.uses[t] == 0);  // the teachers already there never ran
  CHECK(added.uses[last] > 0);
  const auto a = load_bundle(grown), b = load_bundle(scratch);
  CHECK(a.manifest().teachers == b.manifest().teachers);
  REQUIRE(a.weights().size() == b.weights().size());
  for (std::size_t k = 0; k < a.weights().size(); ++k) CHECK(a.weights()[k] == Approx(b.weights()[k]).margin(1e-6));
  CHECK(a.cascade_order() == b.cascade_order());
  REQUIRE(a.cascade_thresholds());
  REQUIRE(b.cascade_thresholds());
  CHECK(*a.cascade_thresholds() == *b.cascade_thresholds());
  REQUIRE(a.router());
  REQUIRE(b.router());
  REQUIRE(a.router()->map.w.size() == b.router()->map.w.size());
  for (std::size_t k = 0; k < a.router()->map.w.size(); ++k)
    CHECK(a.router()->map.w[k] == Approx(b.router()->map.w[k]).margin(1e-6));
  for (std::size_t k = 0; k < a.router()->map.b.size(); ++k)
    CHECK(a.router()->map.b[k] == Approx(b.router()->map.b[k]).margin(1e-6));
  // The cache now holds three teachers; one made for other teachers is refused by name.
  CHECK(read_development(development_path(grown), b.teacher_digests()).teachers() == skill_names.size());
  CHECK_THROWS_AS(read_development(development_path(grown), {b.teacher_digests()[0]}), nexus::bundle_error);
  CHECK_THROWS_AS(read_development(d.path / "none.dev", {}), nexus::io_error);
}
