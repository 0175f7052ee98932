// Name maps: every fixture's tensors are each consumed exactly once, and the tensors a
// descriptor expects are exactly the state_dict transformers builds for the same config.
#include <catch2/catch.hpp>

#include "nexus/io/checkpoint.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/registry/binding.hpp"
#include "nexus/registry/open.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {

const family& family_of(const fs::path& dir) {
  const auto cfg = registry::read_config(dir);
  return registry::find_family(config_reader(cfg, "config.json"));
}

}  // namespace

TEST_CASE("expected tensors equal transformers' state_dict for every config") {
  auto dirs = test::reference_dirs("configs");
  const auto models = test::reference_dirs("models");
  dirs.insert(dirs.end(), models.begin(), models.end());
  for (const auto& dir : dirs) {
    INFO("fixture " << dir.filename().string());
    const auto ref = test::load_json(dir / "reference.json")["state_dict"];
    const auto n = registry::describe(dir);
    std::map<std::string, shape_t> ours;
    std::map<std::string, std::vector<std::string>> spellings;  // a name and its aliases (Falcon's ln_attn)
    for (const auto& e : registry::expected_tensors(family_of(dir), n)) {
      CHECK(ours.emplace(e.name, e.shape).second);  // each checkpoint name once
      spellings[e.name] = e.aliases;
      spellings[e.name].insert(spellings[e.name].begin(), e.name);
      for (const auto& alias : e.aliases) CHECK(ours.emplace(alias, e.shape).second);
    }
    std::map<std::string, shape_t> theirs;
    for (const auto& [name, shape] : ref.items()) theirs[name] = shape.get<shape_t>();
    for (const auto& [name, shape] : theirs) {
      INFO(name);
      REQUIRE(ours.count(name));
      CHECK(ours[name] == shape);
    }
    for (const auto& [name, names] : spellings) {  // exactly one spelling of each is in the state_dict
      INFO(name);
      CHECK(std::count_if(names.begin(), names.end(), [&](const auto& s) { return theirs.count(s) > 0; }) == 1);
    }
    // Gemma 3's vision tower and projector: weights of the image path, ignored by the family
    const auto& fam = family_of(dir);
    for (const auto& other :
         test::load_json(dir / "reference.json").value("state_dict_other_parts", nlohmann::json::array())) {
      const auto name = other.get<std::string>();
      INFO(name);
      CHECK(std::any_of(fam.ignored_prefixes.begin(), fam.ignored_prefixes.end(),
                        [&](auto p) { return name.starts_with(p); }));
    }
  }
}

TEST_CASE("a wrapper's checkpoint binds under every spelling of its decoder's names") {
  // gemma3: 4.x files say language_model.model.*, transformers' state_dict and 5.x files model.language_model.*
  const fs::path src = test::data_dir() / "models/gemma3";
  const checkpoint original(src);
  const auto n = registry::describe(src);
  const auto& fam = family_of(src);
  REQUIRE(original.contains("language_model.model.embed_tokens.weight"));
  std::vector<tensor_to_write> out;
  for (const auto& t : original.tensors()) {
    std::string name = t.name;
    for (const auto& [from, to] : {std::pair{"language_model.model.", "model.language_model."},
                                   {"vision_tower.", "model.vision_tower."},
                                   {"multi_modal_projector.", "model.multi_modal_projector."}})
      if (name.starts_with(from)) name = to + name.substr(std::string(from).size());
    out.push_back({name, t.type, t.shape, t.data});
  }
  const std::vector<float> stranger(2, 0.0f);
  out.push_back({"model.audio_tower.w", dtype::f32, {2}, std::as_bytes(std::span(stranger))});
  const auto dir = fs::temp_directory_path() / ("nexus_bind_g3_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_safetensors((dir / "model.safetensors").string(), out);
  const checkpoint renamed(dir);
  const auto b = registry::bind(fam, n, renamed);
  CHECK(b.missing.empty());
  CHECK(b.mis_shaped.empty());
  CHECK(b.unused == std::vector<std::string>{"model.audio_tower.w"});  // unknown parts stay unused
  CHECK(b.tensors.size() == registry::expected_tensors(fam, n).size());
  CHECK(b.ignored.size() == original.size() - b.tensors.size());
  CHECK(std::all_of(b.ignored.begin(), b.ignored.end(), [](const std::string& s) {
    return s.starts_with("model.vision_tower.") || s.starts_with("model.multi_modal_projector.");
  }));
  fs::remove_all(dir);
}

TEST_CASE("every fixture checkpoint binds completely, each tensor consumed once") {
  for (const auto& dir : test::reference_dirs("models")) {
    INFO("fixture " << dir.filename().string());
    const auto opened = registry::open_checkpoint(dir);
    const auto& ck = opened.weights;
    const auto& n = opened.arch;
    const auto& b = opened.bound;
    CHECK(b.complete());
    INFO(b.report());
    CHECK(b.tensors.size() + b.ignored.size() == ck.size());
    std::set<std::string> used;
    std::set<std::string> targets;
    for (const auto& t : b.tensors) {
      CHECK(used.insert(t.tensor.name).second);
      for (const auto& c : t.expected.targets) CHECK(targets.insert(c).second);
    }
    CHECK(targets.size() == canonical_tensors(n).size());  // every canonical tensor has a source
  }
}

TEST_CASE("binding reports missing, mis-shaped, unused and ignored tensors") {
  const fs::path src = test::data_dir() / "models/gpt2";
  const checkpoint original(src);
  const auto n = registry::describe(src);
  const auto& fam = family_of(src);

  // Rewrite the checkpoint the way old GPT-2 files look (no "transformer." prefix, mask buffers),
  // then break it: drop a tensor, reshape one, add a stranger.
  std::vector<tensor_to_write> out;
  std::vector<std::vector<std::byte>> keep;
  for (const auto& t : original.tensors()) {
    if (t.name == "transformer.h.1.ln_2.bias") continue;
    auto shape = t.shape;
    if (t.name == "transformer.h.0.mlp.c_fc.weight") std::swap(shape[0], shape[1]);
    out.push_back({t.name.substr(std::string("transformer.").size()), t.type, shape, t.data});
  }
  const std::vector<float> mask(4, 1.0f), extra(2, 0.0f);
  out.push_back({"h.0.attn.bias", dtype::f32, {1, 1, 2, 2}, std::as_bytes(std::span(mask))});
  out.push_back({"h.0.attn.extra", dtype::f32, {2}, std::as_bytes(std::span(extra))});
  const auto dir = fs::temp_directory_path() / ("nexus_bind_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_safetensors((dir / "model.safetensors").string(), out);
  const checkpoint broken(dir);
  const auto b = registry::bind(fam, n, broken);
  CHECK_FALSE(b.complete());
  CHECK(b.missing == std::vector<std::string>{"transformer.h.1.ln_2.bias"});
  REQUIRE(b.mis_shaped.size() == 1);
  CHECK_THAT(b.mis_shaped[0], Catch::StartsWith("h.0.mlp.c_fc.weight"));
  CHECK(b.unused == std::vector<std::string>{"h.0.attn.extra"});
  CHECK(b.ignored == std::vector<std::string>{"h.0.attn.bias"});
  CHECK_THAT(b.report(), Catch::Contains("missing tensor transformer.h.1.ln_2.bias"));
  fs::remove_all(dir);
}

TEST_CASE("fused layouts have the shapes of their targets stacked") {
  CHECK(registry::stored_shape(tensor_layout::fused_rows, {{32, 64}, {16, 64}, {16, 64}}) == shape_t{64, 64});
  CHECK(registry::stored_shape(tensor_layout::fused_cols_transposed, {{64, 64}, {64, 64}, {64, 64}}) ==
        shape_t{64, 192});
  CHECK(registry::stored_shape(tensor_layout::fused_cols_transposed, {{64}, {64}, {64}}) == shape_t{192});
  CHECK(registry::stored_shape(tensor_layout::transposed, {{256, 64}}) == shape_t{64, 256});
}
