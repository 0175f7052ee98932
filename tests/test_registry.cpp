// config.json -> descriptor, checked against what transformers itself reports for the same
// config (tests/data/*/reference.json, written by tools/fixtures/make_fixtures.py).
#include <catch2/catch.hpp>

#include "nexus/arch/rope.hpp"
#include "nexus/registry/open.hpp"
#include "nexus/registry/registry.hpp"
#include "nexus/tokenizer/tokenizer.hpp"
#include "reference.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>

using namespace nexus;
namespace fs = std::filesystem;

namespace {

activation expected_activation(const std::string& hf_name) {
  if (hf_name == "silu" || hf_name == "swish") return activation::silu;
  if (hf_name == "gelu") return activation::gelu;
  if (hf_name == "gelu_new" || hf_name == "gelu_pytorch_tanh" || hf_name == "gelu_fast") return activation::gelu_tanh;
  if (hf_name == "relu") return activation::relu;
  FAIL("reference uses activation " << hf_name);
  return {};
}

double or_zero(const nlohmann::json& v) { return v.is_null() ? 0.0 : v.get<double>(); }

/// The descriptor of `dir`'s config.json against the values transformers reported in `reference`'s
/// reference.json (the same folder, or the 4.x original of a config transformers 5 saved again).
void check_against_reference(const fs::path& dir, const fs::path& reference) {
  INFO("fixture " << dir.filename().string());
  const auto ref = test::load_json(reference / "reference.json");
  const auto& v = ref["values"];
  const auto n = registry::describe(dir);
  // a wrapper's descriptor is its decoder's (gemma3 -> gemma3_text)
  CHECK(n.family == v.value("text_model_type", ref["model_type"].get<std::string>()));
  CHECK(n.dims.vocab_size == v["vocab_size"].get<std::int64_t>());
  CHECK(n.dims.hidden_size == v["hidden_size"].get<std::int64_t>());
  CHECK(n.dims.num_layers == v["num_layers"].get<std::int64_t>());
  CHECK(n.dims.num_heads == v["num_heads"].get<std::int64_t>());
  CHECK(n.dims.num_kv_heads == v["num_kv_heads"].get<std::int64_t>());
  CHECK(n.dims.head_dim == v["head_dim"].get<std::int64_t>());
  CHECK(n.dims.intermediate_size == v["intermediate_size"].get<std::int64_t>());
  CHECK(n.dims.max_positions == v["max_positions"].get<std::int64_t>());
  CHECK(n.norm.eps == v["norm_eps"].get<double>());
  CHECK(n.mlp.act == expected_activation(v["hidden_act"].get<std::string>()));
  CHECK(n.embedding.tied == v["tie_word_embeddings"].get<bool>());
  CHECK(n.embedding.scale == Approx(v["embed_scale"].get<double>()).epsilon(1e-12));
  CHECK(n.attention.scale == Approx(v["attention_scale"].get<double>()).epsilon(1e-12));
  CHECK(n.attention.softcap == or_zero(v["attn_softcap"]));
  CHECK(n.head.final_softcap == or_zero(v["final_softcap"]));
  CHECK(n.head.logit_scale == v["logit_scale"].get<double>());
  CHECK(n.attention.qkv_clip == or_zero(v["qkv_clip"]));
  CHECK((n.residual != residual_form::sequential) == v["parallel_residual"].get<bool>());
  CHECK(n.attention.qkv_bias == v["qkv_bias"].get<bool>());
  CHECK(n.attention.o_bias == v["o_bias"].get<bool>());
  CHECK(n.mlp.bias == v["mlp_bias"].get<bool>());
  CHECK(n.head.bias == v["lm_head_bias"].get<bool>());

  CHECK(n.residual_scale == v.value("residual_scale", 1.0));
  CHECK(n.position.unrotated_layers == v.value("unrotated_layers", std::vector<std::int64_t>{}));
  if (v.contains("moe")) {
    const auto& m = v["moe"];
    CHECK(n.moe.num_experts == m["num_experts"].get<std::int64_t>());
    CHECK(n.moe.top_k == m["top_k"].get<std::int64_t>());
    CHECK(n.moe.expert_intermediate == m["expert_intermediate"].get<std::int64_t>());
    CHECK(n.moe.norm_topk == m["norm_topk"].get<bool>());
    CHECK(n.moe.shared_intermediate == m["shared_intermediate"].get<std::int64_t>());
    CHECK(n.moe.shared_gate == m["shared_gate"].get<bool>());
    CHECK(n.moe.dense_layers == m["dense_layers"].get<std::vector<std::int64_t>>());
  } else {
    CHECK(n.moe.num_experts == 0);
  }

  const auto& windows = v["sliding_window_per_layer"];
  REQUIRE(n.attention.layers.size() == windows.size());
  for (std::size_t i = 0; i < windows.size(); ++i) {
    INFO("layer " << i);
    if (windows[i].is_null()) {
      CHECK(n.attention.layers[i] == layer_attention::full);
    } else {
      CHECK(n.attention.layers[i] == layer_attention::sliding);
      CHECK(n.attention.sliding_window == windows[i].get<std::int64_t>());
    }
  }

  if (v["rope_theta"].is_null()) {
    CHECK(n.position.kind != position_kind::rope);
    return;
  }
  REQUIRE(n.position.kind == position_kind::rope);
  CHECK(n.position.theta == v["rope_theta"].get<double>());
  CHECK(n.position.rotary_dim == v["rotary_dim"].get<std::int64_t>());
  const auto type = v["rope_type"].get<std::string>();
  CHECK(reflect::to_string(n.position.scaling.type) == (type == "default" ? "none" : type));
  CHECK(n.position.scaling.attention_factor == Approx(v["rope_attention_factor"].get<double>()).epsilon(1e-12));
  const auto check_inv = [](const std::vector<double>& inv, const std::vector<double>& ref_inv) {
    REQUIRE(inv.size() == ref_inv.size());
    for (std::size_t i = 0; i < inv.size(); ++i) {
      INFO("inv_freq[" << i << "]");
      CHECK(inv[i] == Approx(ref_inv[i]).epsilon(2e-6));  // reference computed in fp32
    }
  };
  check_inv(rope_inv_freq(rope_for(n.position, layer_attention::full)), v["rope_inv_freq"].get<std::vector<double>>());

  // Gemma 3: sliding layers rotate with their own base (rotary_emb_local); nobody else's do.
  if (!v.contains("rope_local_theta")) {
    CHECK_FALSE(has_sliding_rope(n.position));
    return;
  }
  INFO("sliding layers' rope");
  REQUIRE(has_sliding_rope(n.position));
  CHECK(n.position.sliding.theta == v["rope_local_theta"].get<double>());
  const auto local_type = v["rope_local_type"].get<std::string>();
  CHECK(reflect::to_string(n.position.sliding.scaling.type) == (local_type == "default" ? "none" : local_type));
  check_inv(rope_inv_freq(rope_for(n.position, layer_attention::sliding)),
            v["rope_local_inv_freq"].get<std::vector<double>>());
  CHECK(reflect::to_string(n.norm.qk) == v.value("qk_norm", std::string("none")));
}

void check_against_reference(const fs::path& dir) { check_against_reference(dir, dir); }

}  // namespace

TEST_CASE("config cases: descriptor equals what transformers reports") {
  const auto dirs = test::reference_dirs("configs");
  REQUIRE(dirs.size() >= 30);
  for (const auto& d : dirs) check_against_reference(d);
}

TEST_CASE("fixture checkpoints: descriptor equals what transformers reports") {
  const auto dirs = test::reference_dirs("models");
  REQUIRE(dirs.size() >= 10);
  for (const auto& d : dirs) check_against_reference(d);
}

// Issue 26: the config of every case and tiny checkpoint as transformers 5 saves it (written by
// tools/fixtures/make_v5_configs.py with transformers 5.24: rope_parameters, num_local_experts, ...) must give the
// values transformers 4.57 reported for the original, and the same descriptor. No size may come from a default.
// Where transformers 5 reads the original differently (transformers5.json: Cohere's and OLMo 3's default rope_theta
// became 500000, also for OLMo 3's sliding layers; rope_type now wins over a legacy type beside it), its RoPE
// settings are checked instead.
TEST_CASE("every config as transformers 5 saves it describes what its 4.x original does") {
  std::size_t count = 0;
  std::vector<std::string> read_differently;
  for (const char* kind : {"configs", "models"}) {
    for (const auto& e : fs::directory_iterator(test::data_dir() / "configs_v5" / kind)) {
      const auto name = e.path().filename().string(), original = (test::data_dir() / kind / name).string();
      INFO(kind << "/" << name);
      REQUIRE(fs::exists(fs::path(original) / "reference.json"));
      const auto v4 = test::load_json(fs::path(original) / "reference.json")["values"];
      const auto v5 = test::load_json(e.path() / "transformers5.json")["rope"];
      const auto n = registry::describe(e.path());
      // each kind of layer's (theta, type) as transformers 5 and 4.57 read them
      using rope_pair = std::pair<nlohmann::json, nlohmann::json>;
      rope_pair full5, sliding5, full4{v4["rope_theta"], v4["rope_type"]}, sliding4 = full4;
      if (v4.contains("rope_local_theta")) sliding4 = {v4["rope_local_theta"], v4["rope_local_type"]};
      if (v5.is_null()) {
        CHECK(n.position.kind != position_kind::rope);
        full5 = sliding5 = {nullptr, v4["rope_type"]};
      } else {
        REQUIRE(n.position.kind == position_kind::rope);
        full5 = {v5["rope_theta"], v5["rope_type"]};
        sliding5 = v5["sliding"].is_null() ? full5 : rope_pair{v5["sliding"]["rope_theta"], v5["sliding"]["rope_type"]};
        for (const auto& [kind, want] :
             {std::pair{layer_attention::full, full5}, {layer_attention::sliding, sliding5}}) {
          const auto p = rope_for(n.position, kind);
          CHECK(p.theta == want.first.get<double>());
          const auto type = want.second.get<std::string>();
          CHECK(reflect::to_string(p.scaling.type) == (type == "default" ? "none" : type));
        }
      }
      if (full4 == full5 && sliding4 == sliding5) {
        check_against_reference(e.path(), original);
        CHECK(n == registry::describe(fs::path(original)));
      } else {
        read_differently.push_back(name);
      }
      ++count;
    }
  }
  CHECK(count >= 130);
  std::sort(read_differently.begin(), read_differently.end());
  CHECK(read_differently == std::vector<std::string>{"cohere_custom", "cohere_defaults", "llama_rope_type_conflict",
                                                     "olmo3", "olmo3_defaults", "olmo3_scaled"});
  for (const auto* f : registry::families) {  // every family in both forms, as a case and as a checkpoint
    INFO(f->model_type);
    CHECK(fs::exists(test::data_dir() / "configs_v5/configs" / (std::string(f->model_type) + "_defaults")));
    CHECK(fs::exists(test::data_dir() / "configs_v5/models" / f->model_type));
  }
  // the form the issue found: Qwen3-MoE's expert count under transformers 5's name only
  const auto moe = registry::read_config(test::data_dir() / "configs_v5/configs/qwen3_moe_defaults");
  CHECK(moe.contains("num_local_experts"));
  CHECK_FALSE(moe.contains("num_experts"));
}

TEST_CASE("every registered family has config cases and a fixture checkpoint") {
  for (const auto* f : registry::families) {
    INFO(f->model_type);
    CHECK(fs::exists(test::data_dir() / "models" / f->model_type / "reference.json"));
    CHECK(fs::exists(test::data_dir() / "configs" / (std::string(f->model_type) + "_defaults") / "reference.json"));
  }
}

namespace {

/// Parses `config` and expects error type E whose message contains every one of `words`.
template <class E>
void expect_error(const std::string& config, std::initializer_list<const char*> words) {
  INFO(config);
  try {
    registry::describe(nlohmann::json::parse(config), "cfg.json");
    FAIL("accepted");
  } catch (const E& e) {
    const std::string what = e.what();
    CHECK(what.find("cfg.json") != std::string::npos);
    for (const char* w : words) CHECK_THAT(what, Catch::Contains(w));
  }
}

}  // namespace

TEST_CASE("unsupported configs fail naming the field, the value and what is supported") {
  expect_error<unsupported_error>(R"({"model_type":"mamba"})", {"model_type", "mamba", "llama", "gpt_neox"});
  expect_error<config_error>(R"({"hidden_size":64})", {"model_type", "required"});
  expect_error<unsupported_error>(R"({"model_type":"llama","hidden_act":"quick_gelu"})",
                                  {"hidden_act", "quick_gelu", "silu"});
  expect_error<unsupported_error>(R"({"model_type":"llama","rope_scaling":{"rope_type":"mrope","factor":2.0}})",
                                  {"rope_type", "mrope", "yarn"});
  expect_error<unsupported_error>(R"({"model_type":"gpt2","scale_attn_by_inverse_layer_idx":true})",
                                  {"scale_attn_by_inverse_layer_idx"});
  expect_error<unsupported_error>(R"({"model_type":"phi3","rope_scaling":{"type":"linear","factor":2.0}})",
                                  {"rope_scaling", "longrope"});
  expect_error<unsupported_error>(
      R"({"model_type":"qwen2","layer_types":["full_attention","chunked_attention"],"num_hidden_layers":2})",
      {"layer_types", "chunked_attention"});
  expect_error<unsupported_error>(R"({"model_type":"cohere","use_qk_norm":true})", {"use_qk_norm"});
  expect_error<unsupported_error>(R"({"model_type":"olmo","rope_scaling":{"type":"yarn","factor":2.0}})",
                                  {"rope_scaling", "linear"});
}

TEST_CASE("malformed configs fail with a config_error naming the field") {
  expect_error<config_error>(R"({"model_type":"llama","hidden_size":"4096"})", {"hidden_size", "integer"});
  expect_error<config_error>(R"({"model_type":"llama","hidden_size":4096.5})", {"hidden_size", "integer"});
  expect_error<config_error>(R"({"model_type":"llama","num_attention_heads":0})", {"num_attention_heads", "positive"});
  expect_error<config_error>(R"({"model_type":"llama","num_key_value_heads":5})", {"num_key_value_heads", "divide"});
  expect_error<config_error>(R"({"model_type":"llama","tie_word_embeddings":"yes"})", {"tie_word_embeddings"});
  expect_error<config_error>(R"({"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8.0}})",
                             {"low_freq_factor", "required"});
  expect_error<config_error>(R"({"model_type":"llama","rope_scaling":{"factor":8.0}})", {"rope_type"});
  expect_error<config_error>(R"({"model_type":"llama","rope_scaling":[1,2]})", {"rope_scaling", "object"});
  expect_error<config_error>(R"({"model_type":"qwen2","layer_types":["full_attention"],"num_hidden_layers":2})",
                             {"layer_types", "2 layers"});
  expect_error<config_error>(R"({"model_type":"gpt_neox","hidden_size":100,"num_attention_heads":3})",
                             {"num_attention_heads", "divide"});
  expect_error<config_error>(R"({"model_type":"phi","partial_rotary_factor":0.01})", {"partial_rotary_factor"});
  expect_error<config_error>(
      R"({"model_type":"phi3","rope_scaling":{"type":"longrope","short_factor":[1.0],"long_factor":[1.0]}})",
      {"short_factor", "48 entries"});
  expect_error<config_error>(R"([1, 2])", {"object"});
}

namespace {

/// Whether `e` is the error type named in an expected_error.json.
bool is_error_type(const nexus::error& e, const std::string& name) {
  if (name == "config_error") return dynamic_cast<const config_error*>(&e) != nullptr;
  if (name == "unsupported_error") return dynamic_cast<const unsupported_error*>(&e) != nullptr;
  FAIL("expected_error.json names an error type the test does not know: " << name);
  return false;
}

}  // namespace

TEST_CASE("bad config cases: each fails with the named error type, naming the field") {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(test::data_dir() / "configs"))
    if (fs::exists(e.path() / "expected_error.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  REQUIRE(dirs.size() >= 4);
  for (const auto& dir : dirs) {
    const auto want = test::load_json(dir / "expected_error.json");
    INFO("case " << dir.filename().string() << " (transformers: " << want["transformers"].dump() << ")");
    try {
      registry::describe(dir);
      FAIL_CHECK("accepted");  // and on to the next case: every case must fail on its own
    } catch (const nexus::error& e) {
      INFO(e.what());
      CHECK(is_error_type(e, want["error"].get<std::string>()));
      CHECK_THAT(e.what(), Catch::Contains("config.json"));
      for (const auto& w : want["contains"]) CHECK_THAT(e.what(), Catch::Contains(w.get<std::string>()));
    }
  }
}

TEST_CASE("Gemma 3: the gemma3 wrapper's text part, transformers 5's rope_parameters, and what is refused") {
  const auto text = registry::read_config(test::data_dir() / "configs/gemma3_text_rope_parameters");
  const auto want = registry::describe(text, "v5");  // checked against transformers above
  CHECK(want.position.theta == 500000.0);
  CHECK(want.position.sliding.theta == 20000.0);
  // the same text config nested in a Gemma3Config describes the same decoder, family gemma3_text
  const auto nested = registry::describe(
      nlohmann::json{{"model_type", "gemma3"}, {"text_config", text}, {"vision_config", nlohmann::json::object()}},
      "g3");
  CHECK(nested == want);
  CHECK(nested.family == "gemma3_text");
  // and in the 4.x keys
  auto v4 = text;
  v4.erase("rope_parameters");
  v4["rope_theta"] = 500000.0, v4["rope_local_base_freq"] = 20000.0,
  v4["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 4.0}};
  CHECK(registry::describe(v4, "v4") == want);
  // transformers 5 allows scaling on sliding layers too; a missing layer type takes the 4.x key, then the default
  auto sliding_scaled = text;
  sliding_scaled["rope_parameters"]["sliding_attention"] = {
      {"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 300.0}};
  sliding_scaled["rope_parameters"].erase("full_attention");
  const auto s = registry::describe(sliding_scaled, "v5");
  CHECK(s.position.sliding.scaling.type == rope_scaling::linear);
  CHECK(s.position.sliding.scaling.factor == 2.0);
  CHECK(s.position.sliding.theta == 300.0);
  CHECK(s.position.theta == 1000000.0);
  CHECK(s.position.scaling.type == rope_scaling::none);
  CHECK(rope_inv_freq(rope_for(s.position, layer_attention::sliding))[1] == Approx(std::pow(300.0, -2.0 / 256) / 2.0));

  expect_error<unsupported_error>(
      R"({"model_type":"gemma3_text","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":1.0}})",
      {"rope_parameters", "full_attention"});
  expect_error<unsupported_error>(
      R"({"model_type":"gemma3_text","rope_parameters":{"full_attention":{},"chunked_attention":{}}})",
      {"chunked_attention", "sliding_attention"});
  expect_error<config_error>(
      R"({"model_type":"gemma3_text","rope_scaling":{"rope_type":"linear","factor":2.0},"rope_parameters":{"full_attention":{}}})",
      {"rope_scaling", "rope_parameters"});
  expect_error<config_error>(R"({"model_type":"gemma3_text","rope_local_base_freq":0})",
                             {"rope_local_base_freq", "positive"});
  expect_error<config_error>(R"({"model_type":"gemma3_text","sliding_window_pattern":0})",
                             {"sliding_window_pattern", "positive"});
  expect_error<unsupported_error>(R"({"model_type":"gemma3_text","use_bidirectional_attention":true})",
                                  {"use_bidirectional_attention"});
  expect_error<config_error>(R"({"model_type":"gemma3","text_config":[1]})", {"text_config", "object"});
  expect_error<config_error>(R"({"model_type":"gemma3","text_config":{"hidden_size":"big"}})",
                             {"text_config", "hidden_size"});
  // a family whose layers all rotate alike keeps the named error for the per-layer-type form
  expect_error<unsupported_error>(R"({"model_type":"gemma2","rope_parameters":{"full_attention":{"rope_theta":1.0}}})",
                                  {"rope_parameters", "gemma3_text"});
}

TEST_CASE("config.json that is missing or not JSON") {
  CHECK_THROWS_AS(registry::describe(fs::path("/nonexistent/model")), io_error);
  const auto dir = fs::temp_directory_path() / ("nexus_badjson_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << "{\"model_type\": ";
  CHECK_THROWS_AS(registry::describe(dir), config_error);
  fs::remove_all(dir);
}

#include "nexus/inspect/architecture_table.hpp"

TEST_CASE("docs/architectures.md holds the table the registry generates") {
  std::ifstream in(fs::path(NEXUS_SOURCE_DIR) / "docs/architectures.md");
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- BEGIN GENERATED: nexus architectures -->\n", end = "<!-- END GENERATED -->";
  const auto b = text.find(begin), e = text.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  CHECK(text.substr(b + begin.size(), e - b - begin.size()) == registry::architecture_table_markdown());
}

TEST_CASE("configs in the transformers 5 spelling (rope_parameters) describe the same model") {
  for (const char* name : {"llama_rope_yarn", "llama_rope_llama3", "qwen2_rope_yarn", "gpt_neox_rope_linear",
                           "phi_qk_layernorm", "mistral_defaults"}) {
    INFO(name);
    const auto dir = test::data_dir() / "configs" / name;
    REQUIRE(fs::exists(dir / "config.json"));
    const auto v4 = registry::read_config(dir);
    const auto want = registry::describe(v4, "v4");  // checked against transformers above
    auto v5 = v4;
    const bool neox = v4["model_type"] == "gpt_neox";
    nlohmann::json rp = v4.contains("rope_scaling") && !v4["rope_scaling"].is_null()
                            ? v4["rope_scaling"]
                            : nlohmann::json{{"rope_type", "default"}};
    if (rp.contains("type")) rp["rope_type"] = rp["type"], rp.erase("type");
    rp["rope_theta"] = registry::describe(v4, "v4").position.theta;
    if (want.position.partial_rotary != 1.0 || neox) rp["partial_rotary_factor"] = want.position.partial_rotary;
    for (const char* key : {"rope_scaling", "rope_theta", "rotary_emb_base", "rotary_pct", "partial_rotary_factor"})
      v5.erase(key);
    v5["rope_parameters"] = rp;
    CHECK(registry::describe(v5, "v5") == want);
  }
  CHECK_THROWS_AS(
      registry::describe(
          nlohmann::json::parse(R"({"model_type":"llama","rope_parameters":{"full_attention":{"rope_theta":1.0}}})"),
          "v5"),
      unsupported_error);
}

TEST_CASE("every form of the rope settings transformers 4.4x and 5.x write reads the same as its 4.x spelling") {
  const auto same = [](const char* v5, const char* v4) {
    INFO(v5);
    CHECK(registry::describe(nlohmann::json::parse(v5), "v5") == registry::describe(nlohmann::json::parse(v4), "v4"));
  };
  // rope_type wins over the legacy alias `type` in rope_parameters (4.x Llama configs let `type` win in rope_scaling)
  same(
      R"({"model_type":"llama","rope_parameters":{"type":"linear","rope_type":"dynamic","factor":2.0,"rope_theta":500.0}})",
      R"({"model_type":"llama","rope_theta":500.0,"rope_scaling":{"rope_type":"dynamic","factor":2.0}})");
  // `type` alone is the rope type
  same(R"({"model_type":"mistral","rope_parameters":{"type":"linear","factor":3.0}})",
       R"({"model_type":"mistral","rope_scaling":{"rope_type":"linear","factor":3.0}})");
  // keys the rope type does not use are ignored (transformers 5 only warns)
  same(R"({"model_type":"qwen2","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":1e6,
           "original_max_position_embeddings":4096,"mscale":1.0}})",
       R"({"model_type":"qwen2","rope_theta":1e6,"rope_scaling":{"type":"linear","factor":2.0}})");
  // an empty object is the defaults; rope_type default is no scaling
  same(R"({"model_type":"llama","rope_parameters":{}})", R"({"model_type":"llama"})");
  same(R"({"model_type":"llama","rope_parameters":{"rope_type":"default","rope_theta":20.0}})",
       R"({"model_type":"llama","rope_theta":20.0})");
  // a legacy rope_scaling beside rope_parameters replaces it (`rope_scaling or rope_parameters`)
  same(R"({"model_type":"llama","rope_scaling":{"rope_type":"linear","factor":4.0},
           "rope_parameters":{"rope_type":"dynamic","factor":2.0}})",
       R"({"model_type":"llama","rope_scaling":{"rope_type":"linear","factor":4.0}})");
  // partial rotary inside rope_parameters
  same(
      R"({"model_type":"phi","rope_parameters":{"rope_type":"default","rope_theta":10000.0,"partial_rotary_factor":0.25}})",
      R"({"model_type":"phi","partial_rotary_factor":0.25})");
  // OLMo's and Phi-3's own 4.x validations of rope_scaling are not transformers 5's
  same(R"({"model_type":"olmo","rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":10000.0}})",
       R"({"model_type":"olmo","rope_scaling":{"type":"linear","factor":2.0}})");
  const auto factors = [](double start) {
    nlohmann::json f = nlohmann::json::array();
    for (int i = 0; i < 48; ++i) f.push_back(start + 0.01 * i);
    return f.dump();
  };
  const std::string phi3_v5 =
      R"({"model_type":"phi3","max_position_embeddings":131072,"rope_parameters":{"rope_type":"longrope","rope_theta":10000.0,
      "partial_rotary_factor":1.0,"original_max_position_embeddings":4096,"short_factor":)" +
      factors(1.0) + R"(,"long_factor":)" + factors(2.0) + "}}";
  const std::string phi3_v4 = R"({"model_type":"phi3","max_position_embeddings":131072,"rope_scaling":{"type":"su",
      "short_factor":)" + factors(1.0) +
                              R"(,"long_factor":)" + factors(2.0) + "}}";
  same(phi3_v5.c_str(), phi3_v4.c_str());
  // refused as transformers refuses them
  expect_error<unsupported_error>(R"({"model_type":"llama","rope_parameters":{"rope_type":"proportional_x"}})",
                                  {"rope_type", "proportional_x"});
  expect_error<unsupported_error>(R"({"model_type":"llama","rope_parameters":[1]})", {"rope_parameters"});
  expect_error<config_error>(R"({"model_type":"llama","rope_parameters":{"rope_type":"linear"}})", {"factor"});
}

TEST_CASE("issue-17 families: what no trait expresses is refused by name") {
  expect_error<unsupported_error>(R"({"model_type":"stablelm","qk_layernorm":true})", {"qk_layernorm"});
  expect_error<unsupported_error>(R"({"model_type":"falcon","alibi":true})", {"alibi"});
  expect_error<unsupported_error>(R"({"model_type":"falcon","new_decoder_architecture":true,"parallel_attn":false})",
                                  {"parallel_attn"});
  expect_error<unsupported_error>(R"({"model_type":"qwen2_moe","use_sliding_window":true})", {"use_sliding_window"});
  expect_error<unsupported_error>(
      R"({"model_type":"granitemoe","num_local_experts":4,"position_embedding_type":"nope"})",
      {"position_embedding_type", "nope"});
  expect_error<config_error>(R"({"model_type":"mixtral","num_local_experts":4,"num_experts_per_tok":5})",
                             {"num_experts_per_tok", "num_local_experts"});
  expect_error<config_error>(
      R"({"model_type":"qwen3_moe","num_experts":8,"moe_intermediate_size":16,"decoder_sparse_step":0})",
      {"decoder_sparse_step"});
  expect_error<config_error>(R"({"model_type":"smollm3","num_hidden_layers":2,"no_rope_layers":[1]})",
                             {"no_rope_layers", "2 layers"});
  expect_error<config_error>(R"({"model_type":"granite","logits_scaling":0})", {"logits_scaling"});
  expect_error<config_error>(R"({"model_type":"cohere2","sliding_window":null})", {"sliding_window"});
  // The CUDA backend names what only the CPU model runs so far.
  CHECK(cpu_only_feature(registry::describe(nlohmann::json{{"model_type", "mixtral"}, {"num_local_experts", 4}}, "m"))
            .starts_with("moe"));
  CHECK(cpu_only_feature(registry::describe(nlohmann::json{{"model_type", "smollm3"}}, "s")).starts_with("position"));
  CHECK(cpu_only_feature(registry::describe(nlohmann::json{{"model_type", "llama"}}, "l")).empty());
}

TEST_CASE("MoE expert counts: read under either name transformers writes, never defaulted") {
  // transformers' config classes map num_local_experts and num_experts onto each other (a Qwen3-MoE
  // config saved by transformers 5 says num_local_experts); the count sizes tensors, so a config
  // without it is refused instead of taking the class default.
  for (const char* family : {"mixtral", "granitemoe", "olmoe", "qwen2_moe", "qwen3_moe"}) {
    INFO(family);
    for (const char* key : {"num_experts", "num_local_experts"}) {
      const nlohmann::json c = {
          {"model_type", family}, {key, 6}, {"num_experts_per_tok", 2}, {"moe_intermediate_size", 16}};
      CHECK(registry::describe(c, "c").moe.num_experts == 6);
    }
    expect_error<config_error>(nlohmann::json{{"model_type", family}, {"moe_intermediate_size", 16}}.dump(),
                               {"'num_experts' or 'num_local_experts'", "required"});
    expect_error<config_error>(
        nlohmann::json{
            {"model_type", family}, {"num_experts", 6}, {"num_local_experts", 8}, {"moe_intermediate_size", 16}}
            .dump(),
        {"num_local_experts", "disagrees", "num_experts"});
  }
  expect_error<config_error>(R"({"model_type":"qwen3_moe","num_experts":8})", {"moe_intermediate_size", "required"});
}

TEST_CASE("models by name: a Hugging Face id resolves in the local Hugging Face cache, read-only") {
  namespace fs = std::filesystem;
  const auto hub = fs::temp_directory_path() / "nexus_test_hf_hub";
  fs::remove_all(hub);
  const auto repo = hub / "models--tiny-org--tiny-llama";
  const auto snap = repo / "snapshots" / "0123abcd";
  fs::create_directories(snap);
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << "0123abcd";  // huggingface_hub writes the hash without a newline
  for (const auto& f : fs::directory_iterator(test::data_dir() / "models/llama"))
    fs::create_symlink(f.path(), snap / f.path().filename());  // as the cache does: links into blobs/
  ::setenv("HF_HUB_CACHE", hub.c_str(), 1);
  CHECK(resolve_model("tiny-org/tiny-llama") == snap);
  CHECK(resolve_model("tiny-org/tiny-llama@0123abcd") == snap);
  CHECK(resolve_model(repo.string()) == snap);  // the cache folder itself
  const auto opened = registry::open_checkpoint("tiny-org/tiny-llama");
  CHECK(opened.fam->model_type == "llama");
  CHECK(tokenizer::load("tiny-org/tiny-llama").encode("Hello") ==
        tokenizer::load(test::data_dir() / "models/llama").encode("Hello"));
  CHECK_THROWS_WITH(resolve_model("tiny-org/no-such-model"),
                    Catch::Contains("models--tiny-org--no-such-model") && Catch::Contains("HF_HUB_CACHE"));
  CHECK_THROWS_WITH(resolve_model("tiny-org/tiny-llama@v9"), Catch::Contains("no snapshot for revision 'v9'"));
  CHECK_THROWS_AS(resolve_model("../../etc/passwd-like/../x"), io_error);
  ::unsetenv("HF_HUB_CACHE");
  fs::remove_all(hub);
}
