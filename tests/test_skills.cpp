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
