// GGUF files as checkpoints: the descriptor from metadata against the Hugging Face folder and against the
// config transformers builds from the same file; binding under llama.cpp's tensor names; CPU parity with
// transformers (tests/data/gguf_models, tools/fixtures/make_gguf_fixtures.py); named errors for bad files; and
// the two real models against tests/data/real (tools/fixtures/make_real_references.py), tagged [real].
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/generate/parity_check.hpp"
#include "nexus/registry/open.hpp"
#include "nexus/io/model_cache.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {

fs::path gguf_dir() { return test::data_dir() / "gguf_models"; }

/// name.gguf -> the Hugging Face fixture it was converted from.
std::string source_of(const std::string& name) {
  return name == "llama_q8_0" ? "llama" : name == "gemma3" ? "gemma3_text" : name;
}

std::vector<std::string> gguf_fixtures() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(gguf_dir()))
    if (e.path().extension() == ".gguf") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// Descriptor fields llama.cpp's converter does not carry into GGUF, so that the GGUF model differs from the Hugging
/// Face one (the fixtures use non-default values there; each file has its own transformers outputs).
const std::map<std::string, std::vector<std::string>> lossy_fields{
    {"mistral", {"family", "attention.sliding_window", "attention.layers"}},  // written as llama, no window
    {"qwen2", {"attention.sliding_window", "attention.layers"}},              // no window in qwen2 GGUF
    {"gemma2", {"attention.scale"}},  // query_pre_attn_scalar not written: Gemma2Config's 256 applies
    // the same, and the layer pattern (alternating in the fixture) is not written: every 6th layer global
    {"gemma3", {"attention.scale", "attention.layers"}},
};

/// A GGUF file rebuilt from one of the fixtures with metadata or tensors changed: scalar and string metadata are
/// copied (arrays, i.e. the vocabulary, are left out: its size becomes <arch>.vocab_size), `set` overrides or adds
/// string keys, `drop` removes keys.
struct gguf_edit {
  std::map<std::string, std::string> set;
  std::set<std::string> drop;
  std::map<std::string, std::vector<std::int64_t>> reshape;  // tensor -> new ne (GGUF order)
  bool add_rope_freqs = false;
};

gguf_edit with_set(const std::string& k, const std::string& v) {
  gguf_edit e;
  e.set[k] = v;
  return e;
}
gguf_edit with_drop(const std::string& k) {
  gguf_edit e;
  e.drop.insert(k);
  return e;
}
gguf_edit with_reshape(const std::string& t, std::vector<std::int64_t> ne) {
  gguf_edit e;
  e.reshape[t] = std::move(ne);
  return e;
}
gguf_edit with_rope_freqs() {
  gguf_edit e;
  e.add_rope_freqs = true;
  return e;
}

fs::path rewrite(const std::string& fixture, const gguf_edit& e, const std::string& out_name) {
  const gguf::file src(gguf_dir() / (fixture + ".gguf"));
  std::string b;
  auto raw = [&](const void* p, std::size_t n) { b.append(static_cast<const char*>(p), n); };
  auto u32 = [&](std::uint32_t v) { raw(&v, 4); };
  auto u64 = [&](std::uint64_t v) { raw(&v, 8); };
  auto str = [&](std::string_view s) {
    u64(s.size());
    raw(s.data(), s.size());
  };
  std::vector<std::pair<std::string, const gguf::value*>> kv;
  for (const auto& [k, v] : src.metadata())
    if (!v.is_array() && !e.drop.count(k) && !e.set.count(k)) kv.emplace_back(k, &v);
  struct tensor {
    std::string name;
    gguf::tensor_type type;
    std::vector<std::int64_t> ne;
    std::span<const std::byte> data;
  };
  std::vector<tensor> ts;
  for (const auto& t : src.tensors())
    ts.push_back({t.name, t.type, e.reshape.count(t.name) ? e.reshape.at(t.name) : t.ne, t.data});
  const std::vector<float> freqs(16, 1.0f);
  if (e.add_rope_freqs)
    ts.push_back({"rope_freqs.weight", gguf::tensor_type::f32, {16}, std::as_bytes(std::span(freqs))});
  const auto vocab_key = src.get<std::string>("general.architecture") + ".vocab_size";
  const bool add_vocab = !src.find(vocab_key) && src.find("tokenizer.ggml.tokens");
  raw("GGUF", 4);
  u32(3);
  u64(ts.size());
  u64(kv.size() + e.set.size() + (add_vocab ? 1 : 0));
  if (add_vocab) {
    str(vocab_key);
    u32(static_cast<std::uint32_t>(gguf::value_type::u32));
    u32(std::uint32_t(src.at("tokenizer.ggml.tokens").size()));
  }
  for (const auto& [k, v] : kv) {
    str(k);
    u32(static_cast<std::uint32_t>(v->type()));
    if (v->type() == gguf::value_type::string) str(v->as<std::string_view>());
    else raw(v->bytes().data(), v->bytes().size());
  }
  for (const auto& [k, v] : e.set) {
    str(k);
    u32(static_cast<std::uint32_t>(gguf::value_type::string));
    str(v);
  }
  std::uint64_t offset = 0;
  for (const auto& t : ts) {
    str(t.name);
    u32(std::uint32_t(t.ne.size()));
    for (auto d : t.ne) u64(std::uint64_t(d));
    u32(static_cast<std::uint32_t>(t.type));
    u64(offset);
    offset += (t.data.size() + 31) / 32 * 32;
  }
  b.resize((b.size() + 31) / 32 * 32, '\0');
  for (const auto& t : ts) {
    raw(t.data.data(), t.data.size());
    b.resize((b.size() + 31) / 32 * 32, '\0');
  }
  const auto path = fs::temp_directory_path() / ("nexus_gguf_" + std::to_string(::getpid()) + "_" + out_name + ".gguf");
  std::ofstream(path, std::ios::binary).write(b.data(), std::streamsize(b.size()));
  return path;
}

void real_model_parity(const std::string& file, const std::string& reference) {
  const auto path = cached_model(file);  // io_error naming tools/fetch_models.sh when absent
  const auto start = std::chrono::steady_clock::now();
  const auto m = load_cpu_model(path);
  const checkpoint ref(test::data_dir() / "real" / reference / "reference.safetensors");
  const auto rep = check_parity(*m, ref);
  CHECK(rep.sequences >= 3);
  for (const auto& r : rep.rows) {
    INFO(file << " " << r.tensor << ": max|d| " << r.stats.max_abs << " (max|ref| " << r.stats.max_ref << "), NMSE "
              << r.stats.nmse);
    CHECK(r.ok);
  }
  WARN(file << ": worst logits max|d| " << rep.worst_logits() << ", "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s");
}

}  // namespace

TEST_CASE("GGUF fixtures exist for every family llama.cpp writes") {
  const auto names = gguf_fixtures();
  for (const auto* f : registry::families) {
    if (!f->gguf) continue;
    INFO(f->model_type);
    CHECK(std::find(names.begin(), names.end(), std::string(f->gguf->arch)) != names.end());
  }
}

TEST_CASE("descriptor from GGUF metadata equals the Hugging Face folder's, except what GGUF does not carry") {
  for (const auto& name : gguf_fixtures()) {
    INFO("fixture " << name);
    const auto from_gguf = registry::describe(gguf_dir() / (name + ".gguf"));
    const auto from_hf = registry::describe(test::data_dir() / "models" / source_of(name));
    const auto it = lossy_fields.find(name);
    CHECK(reflect::diff(from_gguf, from_hf) == (it == lossy_fields.end() ? std::vector<std::string>{} : it->second));
  }
}

TEST_CASE("descriptor from GGUF metadata equals the one from the config transformers builds from the file") {
  for (const auto& name : gguf_fixtures()) {
    const auto cfg = gguf_dir() / (name + ".config.json");
    if (!fs::exists(cfg)) continue;  // gemma 1: transformers has no GGUF loader for it
    INFO("fixture " << name);
    const auto ours = registry::describe(gguf_dir() / (name + ".gguf"));
    const auto theirs = registry::describe(test::load_json(cfg), cfg.string());
    auto d = reflect::diff(ours, theirs);
    // transformers keeps the f32 value (9.999999747378752e-06), we its shortest spelling (1e-05): the same float
    if (float(ours.norm.eps) == float(theirs.norm.eps)) std::erase(d, std::string("norm.eps"));
    // transformers 5 reads no key_length for qwen3 (keeps head_dim = 128 and cannot load the file); llama.cpp reads it
    const std::vector<std::string> expected =
        name == "qwen3" ? std::vector<std::string>{"dims.head_dim", "position.rotary_dim", "attention.scale"}
                        : std::vector<std::string>{};
    CHECK(d == expected);
  }
}

TEST_CASE("every GGUF fixture binds completely under llama.cpp's tensor names") {
  for (const auto& name : gguf_fixtures()) {
    INFO("fixture " << name);
    const auto o = registry::open_checkpoint(gguf_dir() / (name + ".gguf"));
    INFO(o.bound.report());
    CHECK(o.bound.complete());
    CHECK(o.bound.tensors.size() == o.weights.size());
    std::set<std::string> targets;
    for (const auto& t : o.bound.tensors)
      for (const auto& c : t.expected.targets) CHECK(targets.insert(c).second);
    CHECK(targets.size() == canonical_tensors(o.arch).size());
  }
}

TEST_CASE("CPU logits, hidden states and greedy tokens from GGUF match transformers") {
  for (const auto& name : gguf_fixtures()) {
    INFO("fixture " << name);
    // F32 files whose model is the Hugging Face one are checked against the folder's own outputs
    const auto own = gguf_dir() / (name + ".outputs.safetensors");
    const auto ref_path = fs::exists(own) ? own : test::data_dir() / "models" / source_of(name) / "outputs.safetensors";
    CHECK(fs::exists(own) == (lossy_fields.count(name) || name == "llama_q8_0"));
    const auto m = load_cpu_model(gguf_dir() / (name + ".gguf"));
    const auto rep = check_parity(*m, checkpoint(ref_path));
    CHECK(rep.sequences == 3);
    for (const auto& r : rep.rows) {
      INFO(r.tensor << ": max|d| " << r.stats.max_abs << " (max|ref| " << r.stats.max_ref << "), NMSE "
                    << r.stats.nmse);
      CHECK(r.ok);
    }
  }
}

TEST_CASE("the undone Q/K permutation matters: a GGUF Llama read without it fails parity") {
  // Guards the test above: the rope_pairs_rows layout is not a no-op on these fixtures.
  auto o = registry::open_checkpoint(gguf_dir() / "llama.gguf");
  for (auto& t : o.bound.tensors)
    if (t.expected.layout == tensor_layout::rope_pairs_rows) t.expected.layout = tensor_layout::same;
  const auto m = make_cpu_model(o.arch, unpack_weights(o.bound, o.arch));
  CHECK_FALSE(check_parity(*m, checkpoint(test::data_dir() / "models/llama/outputs.safetensors")).ok());
}

TEST_CASE("bad GGUF checkpoints give named errors") {
  SECTION("unknown architecture") {
    const auto p = rewrite("llama", with_set("general.architecture", "mamba"), "arch");
    CHECK_THROWS_AS(registry::open_checkpoint(p), unsupported_error);
    CHECK_THROWS_WITH(
        registry::open_checkpoint(p),
        Catch::StartsWith(
            p.string() + ": general.architecture = \"mamba\" is not supported (supported: llama, qwen2, qwen3, gemma"));
    fs::remove(p);
  }
  SECTION("missing key") {
    const auto p = rewrite("qwen2", with_drop("qwen2.embedding_length"), "key");
    CHECK_THROWS_AS(registry::describe(p), config_error);
    CHECK_THROWS_WITH(registry::describe(p),
                      Catch::Equals(p.string() + ": metadata key 'qwen2.embedding_length' is required"));
    fs::remove(p);
  }
  SECTION("wrong tensor shape") {
    const auto p = rewrite("phi3", with_reshape("blk.1.attn_qkv.weight", {128, 64}), "shape");
    const auto o = registry::open_checkpoint(p);
    CHECK_FALSE(o.bound.complete());
    CHECK(o.bound.report() == "wrong shape blk.1.attn_qkv.weight: checkpoint [64, 128], expected [128, 64]");
    CHECK_THROWS_AS(load_cpu_model(p), checkpoint_error);
    CHECK_THROWS_WITH(load_cpu_model(p), Catch::Contains("blk.1.attn_qkv.weight"));
    fs::remove(p);
  }
  SECTION("RoPE factor tensors") {
    const auto p = rewrite("llama", with_rope_freqs(), "freqs");
    CHECK_THROWS_AS(registry::describe(p), unsupported_error);
    CHECK_THROWS_WITH(registry::describe(p), Catch::Contains("tensor 'rope_freqs.weight'"));
    fs::remove(p);
  }
  SECTION("RoPE scaling type") {
    const auto p = rewrite("llama", with_set("llama.rope.scaling.type", "longrope"), "scaling");
    CHECK_THROWS_AS(registry::describe(p), unsupported_error);
    CHECK_THROWS_WITH(
        registry::describe(p),
        Catch::Contains("'llama.rope.scaling.type' = \"longrope\" is not supported (supported: none, linear, yarn)"));
    fs::remove(p);
  }
  SECTION("a llama file named \"mistral\" is Mistral, as transformers reads it") {
    const auto p = rewrite("llama", with_set("general.name", "mistral"), "name");
    CHECK(registry::describe(p).family == "mistral");
    fs::remove(p);
  }
}

TEST_CASE("SmolLM2-135M-Instruct Q4_1 from GGUF matches transformers", "[real]") {
  real_model_parity("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2");
}

TEST_CASE("Gemma 3 270M Q4_K_M from GGUF matches transformers", "[real]") {
  real_model_parity("gemma-3-270m-q4_k_m.gguf", "gemma3");
}
