// A fused system (nexus/fusion/system/system.hpp): the three synthetic-skill teachers of tests/data/skills
// (different families and tokenizers, each trained on one skill) as one .nexus bundle, its mixture,
// router and cascade fitted on development prompts, then scored and asked one prompt of each skill.
//   ./build/examples/fused_system tests/data/skills /tmp/skills.nexus
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "nexus/fusion/system/system.hpp"

using namespace nexus::fusion;
namespace fs = std::filesystem;

int main(int argc, char** argv) try {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fused_system SKILLS_DIR OUT.nexus\n");
    return 2;
  }
  const fs::path skills = argv[1], out = argv[2];
  // 1. The bundle: each teacher by size and sha256, found by its path.
  bundle_manifest m;
  for (const char* name : {"adder", "reverser", "facts"}) {
    const auto d = digest_teacher(skills / name);
    m.teachers.push_back({name, name, d.sha256, d.bytes, {teacher_source::kind::path, fs::absolute(skills / name)}});
  }
  write_bundle(out, m, {});

  // 2. Fit on development prompts and their answers: mixture weights (EM), the router (ridge from a
  //    prompt's first 16 bytes and the cheapest teacher's pooled state to each teacher's loss) and the
  //    cascade (entropy thresholds for half of the bytes escalated). Then write them into the bundle.
  std::vector<dev_example> dev;
  for (const char* name : {"adder", "reverser", "facts"}) {
    std::ifstream in(skills / name / "dev.jsonl");
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      dev.push_back({j["prompt"], j["answer"]});
    }
  }
  {
    auto sys = load_bundle(out);
    const auto f = sys.fit(dev, {.kind = mixture_kind::linear, .prefix_bytes = 16});
    std::printf("fitted on %zu examples: router held-out R² %.3f, cascade escalates %.0f%%\n", f.examples,
                f.router ? f.router->heldout_r2 : 0.0, 100 * (f.cascade ? f.cascade->escalated_share : 0.0));
    sys.save(out);
  }

  // 3. Use it: the bundle alone is enough now.
  auto sys = load_bundle(out);
  const auto s = sys.score("12+34=46\n");
  for (const auto& t : s.teachers) std::printf("  %-9s %7.3f bits/byte\n", t.name.c_str(), t.bits_per_byte);
  std::printf("  mixture   %7.3f bits/byte\n", s.bits_per_byte);
  for (const char* prompt : {"12+34=", "reverse a b c:", "fact sudu:"}) {
    std::string routed;
    const auto answer = sys.generate(prompt, {.max_bytes = 16, .stop = {"\n"}, .on_route = [&](std::size_t t) {
                                                routed = sys.manifest().teachers[t].name;
                                              }});
    std::printf("%-16s -> %-10s (routed to %s)\n", prompt, answer.substr(0, answer.size() - 1).c_str(), routed.c_str());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fused_system: %s\n", e.what());
  return 1;
}
