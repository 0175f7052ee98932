// The teacher set's budget, the window plan, and the feature store: values against transformers'
// hidden states, resumption after a stop at several points (byte-identical to an uninterrupted run),
// and named errors for malformed and mismatched stores.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "nexus/fusion/features/extract.hpp"
#include "nexus/generate/parity_check.hpp"
#include "reference.hpp"

using namespace nexus;
using namespace nexus::fusion;
namespace fs = std::filesystem;

namespace {

fs::path models() { return test::data_dir() / "models"; }

/// A fresh empty folder under the system's temporary folder.
fs::path temp_dir(const std::string& name) {
  static int counter = 0;
  auto p = fs::temp_directory_path() /
           ("nexus_extract_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Every file of two folders, byte for byte.
void require_same_files(const fs::path& a, const fs::path& b) {
  std::vector<std::string> na, nb;
  for (const auto& e : fs::directory_iterator(a)) na.push_back(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(b)) nb.push_back(e.path().filename().string());
  std::sort(na.begin(), na.end());
  std::sort(nb.begin(), nb.end());
  REQUIRE(na == nb);
  for (const auto& n : na) {
    INFO(n);
    CHECK(read_all(a / n) == read_all(b / n));
  }
}

/// A corpus of a few documents of mixed text: a folder with a text file and a JSON Lines file.
fs::path small_corpus() {
  const auto dir = temp_dir("corpus");
  std::string prose;
  for (int i = 0; i < 12; ++i)
    prose += "The quick brown fox " + std::to_string(i * 7) + " jumps over the lazy dog; naïve café, 東京 " +
             "and emoji 🙂 — line " + std::to_string(i) + ".\n";
  write_text(dir / "a.txt", prose);
  write_text(dir / "b.jsonl",
             "{\"text\": \"def f(x):\\n    return x * 2  # code\"}\n\n"
             "{\"text\": \"Short one.\", \"id\": 3}\n"
             "{\"text\": \"\"}\n"
             "{\"text\": \"Ünïcödé and tabs\\t\\tand spaces      end\"}\n");
  return dir;
}

extract_options small_options(const fs::path& corpus, const fs::path& out) {
  extract_options o;
  o.teachers = {models() / "llama", models() / "qwen2"};
  o.corpus = {corpus};
  o.layers = {"0", "-1", "final"};
  o.top_k = 4;
  o.dtype = "bf16";
  o.context = 24;
  o.out = out;
  o.shard_size = 20000;
  return o;
}

}  // namespace

TEST_CASE("teacher set: a budget that holds one teacher at a time") {
  const std::vector<fs::path> paths{models() / "llama", models() / "qwen2", models() / "gpt2"};
  std::uint64_t largest = 0, smallest = UINT64_MAX;
  for (const auto& p : paths) {
    const auto b = cpu_weight_bytes(registry::open_checkpoint(p), {});
    largest = std::max(largest, b);
    smallest = std::min(smallest, b);
  }
  REQUIRE(largest < 2 * smallest);  // so the budget below never holds two
  teacher_set set(paths, largest);
  CHECK(set.resident().empty());
  for (const std::size_t i : {0, 1, 2, 1, 1, 0}) {
    const auto& m = set.get(i);
    CHECK(m.arch().family == set.info(i).arch.family);
    REQUIRE(set.resident() == std::vector<std::size_t>{i});
    CHECK(set.resident_bytes() <= set.budget());
  }
  CHECK(set.loads() == 5);  // the repeated get(1) reuses the resident teacher
  CHECK_THAT(set.report(), Catch::Contains("resident: llama"));

  // Room for two: the least recently used one goes.
  teacher_set two(paths, 2 * largest);
  two.get(0), two.get(1), two.get(0), two.get(2);
  CHECK(two.resident() == std::vector<std::size_t>{0, 2});

  CHECK_THROWS_AS(teacher_set(paths, smallest - 1), budget_error);
  CHECK_THROWS_WITH(teacher_set(paths, smallest - 1), Catch::Contains("more than the whole budget"));
  CHECK(parse_bytes("1.5GiB") == 1610612736ull);
  CHECK(parse_bytes("64MiB") == 64ull << 20);
  CHECK(parse_bytes("300MB") == 300000000ull);
  CHECK(parse_bytes("4096") == 4096);
  CHECK_THROWS_AS(parse_bytes("lots"), usage_error);
  CHECK_THROWS_AS(parse_bytes("12XB"), usage_error);
}

TEST_CASE("windows: within the context for every teacher, covering each document's tokens once") {
  const auto a = tokenizer::load(models() / "llama"), b = tokenizer::load(models() / "qwen2");
  const std::string text =
      "Hello, world! This is a test of windows across two tokenizers: 東京, 🙂🙂, tabs\t\tend.";
  for (const std::int64_t context : {2, 3, 8, 64}) {
    INFO("context " << context);
    const auto w = plan_windows(text, 7, {&a, &b}, context);
    REQUIRE(!w.empty());
    CHECK(w.front().begin == 0);
    CHECK(w.back().end == std::int64_t(text.size()));
    const tokenizer* toks[] = {&a, &b};
    for (std::size_t t = 0; t < 2; ++t) {
      std::vector<std::int32_t> joined;
      for (std::size_t i = 0; i < w.size(); ++i) {
        CHECK(w[i].document == 7);
        if (i) CHECK(w[i].begin == w[i - 1].end);
        const auto& ids = w[i].ids[t];
        CHECK(std::int64_t(ids.size()) <= context);
        CHECK(w[i].spans[t].size() == 2 * ids.size());
        const auto prefix = toks[t]->prefix_ids().size();
        if (!ids.empty()) {
          CHECK(std::equal(toks[t]->prefix_ids().begin(), toks[t]->prefix_ids().end(), ids.begin()));
          joined.insert(joined.end(), ids.begin() + std::ptrdiff_t(prefix), ids.end());
          for (std::size_t k = prefix; k < ids.size(); ++k) CHECK(w[i].spans[t][2 * k + 1] <= w[i].end);
        }
      }
      CHECK(joined == toks[t]->encode(text, false));
    }
    // With room for the whole text, one window.
    if (context == 64) CHECK(w.size() == 1);
  }
}

TEST_CASE("feature store: hidden states at the tapped layers match transformers") {
  // The documents are transformers' fixture inputs, as text: GPT-2's tokenizer reads them back into
  // the same ids and adds no special tokens, so its windows are exactly the recorded sequences.
  const auto dir = models() / "gpt2";
  const checkpoint ref(dir / "outputs.safetensors");
  const auto tok = tokenizer::load(dir);
  const auto corpus = temp_dir("fixture_corpus");
  std::string jsonl;
  std::vector<std::vector<std::int32_t>> seqs;
  for (const auto* seq : {"seq1", "seq2"}) {
    const auto ids = reference_ids(ref, std::string(seq) + ".input_ids");
    const auto text = tok.decode(ids);
    REQUIRE(tok.encode(text, true) == ids);
    jsonl += nlohmann::json{{"text", text}}.dump() + "\n";
    seqs.push_back(ids);
  }
  write_text(corpus / "docs.jsonl", jsonl);
  const auto out = temp_dir("fixture_store") / "store";
  extract_options o;
  o.teachers = {dir, models() / "gpt_neox"};
  o.corpus = {corpus};
  o.layers = {"0", "-1", "final"};
  o.top_k = 3;
  o.dtype = "f32";
  o.context = 64;
  o.out = out;
  REQUIRE(extract(o).complete);
  const feature_store store(out);
  REQUIRE(store.windows() == 2);
  CHECK(store.layer_keys(0) == std::vector<std::string>{"layer0", "layer1", "final"});
  for (std::int64_t w = 0; w < 2; ++w) {
    const auto seq = "seq" + std::to_string(w + 1);
    INFO(seq);
    const auto v = store.window(w);
    CHECK(v.document() == w);
    REQUIRE(std::vector<std::int32_t>(v.ids(0).begin(), v.ids(0).end()) == seqs[std::size_t(w)]);
    for (const auto& [key, name] : {std::pair{"layer0", ".layer0"}, {"layer1", ".layer1"}, {"final", ".final"}}) {
      const auto h = v.hidden(0, key);
      std::vector<float> ours;
      for (std::int64_t r = 0; r < h.rows; ++r) {
        const auto row = h.row(r);
        ours.insert(ours.end(), row.begin(), row.end());
      }
      const auto want = reference_floats(ref, seq + name);
      const auto s = compare(ours, want);
      INFO(key << ": max|d| " << s.max_abs << " NMSE " << s.nmse);
      CHECK(s.within());
    }
    // The top-1 id is transformers' argmax of the logits.
    const auto logits = reference_floats(ref, seq + ".logits");
    const auto V = std::size_t(256);
    for (std::size_t p = 0; p < v.tokens(0); ++p) {
      const auto* row = logits.data() + p * V;
      CHECK(v.topk_ids(0)[p * 3] == std::max_element(row, row + V) - row);
    }
    // Spans of teacher 1 (another tokenizer) tile the same document bytes.
    const auto sp = v.spans(1);
    CHECK(sp[0] == 0);
    CHECK(sp[sp.size() - 1] == v.bytes().second);
  }
  fs::remove_all(corpus);
  fs::remove_all(out.parent_path());
}

TEST_CASE("feature store: stopped at several points and resumed, byte-identical to one run") {
  const auto corpus = small_corpus();
  const auto whole = temp_dir("whole") / "store";
  auto o = small_options(corpus, whole);
  const auto r = extract(o);
  REQUIRE(r.complete);
  REQUIRE(r.shards >= 4);  // small shards, so stops fall in different shards
  const feature_store store(whole);
  CHECK(store.windows() == r.windows);
  CHECK(store.shards() == std::size_t(r.shards));
  // Every window's tokens are the document's tokens; hidden states agree with the model's taps.
  {
    const auto m = load_cpu_model(models() / "qwen2");
    const auto v = store.window(3);
    const std::vector<std::int32_t> ids(v.ids(1).begin(), v.ids(1).end());
    REQUIRE(!ids.empty());
    auto cache = m->new_cache(std::int64_t(ids.size()));
    const auto f = m->forward(ids, cache, {.hidden_states = true});
    const auto h = v.hidden(1, "layer1");
    for (std::int64_t row = 0; row < h.rows; ++row)
      for (std::int64_t c = 0; c < h.width; ++c) {
        const float want = f.hidden[2].data[std::size_t(row * h.width + c)];
        CHECK(std::abs(h.at(row, c) - want) <= std::abs(want) * (1.0f / 128));  // bf16 rounding
      }
  }
  // Under a budget that holds one teacher at a time: the same bytes.
  {
    const auto tight = temp_dir("tight") / "store";
    auto t = small_options(corpus, tight);
    t.budget = std::max(cpu_weight_bytes(registry::open_checkpoint(t.teachers[0]), {}),
                        cpu_weight_bytes(registry::open_checkpoint(t.teachers[1]), {}));
    const auto rt = extract(t);
    CHECK_THAT(rt.resident, Catch::Contains("resident: "));
    require_same_files(whole, tight);
    fs::remove_all(tight.parent_path());
  }
  const auto resumed = temp_dir("resumed") / "store";
  std::int64_t stops = 0;
  for (const std::int64_t after : {1, 3, 2, 7}) {
    auto s = small_options(corpus, resumed);
    s.stop = [&](std::int64_t n) { return n >= after; };
    const auto part = extract(s);
    if (part.complete) break;
    ++stops;
    // A stopped store is readable up to its last complete shard, and refused as a whole.
    CHECK_THROWS_AS(feature_store(resumed), store_error);
    CHECK(feature_store(resumed, false).windows() <= r.windows);
  }
  CHECK(stops == 4);
  const auto last = extract(small_options(corpus, resumed));
  CHECK(last.complete);
  CHECK(last.shards_resumed > 0);
  require_same_files(whole, resumed);
  // A leftover temporary file and a stray shard of a killed run are cleared on resumption.
  write_text(resumed / "shard-00001.safetensors.tmp", "partial");
  CHECK(extract(small_options(corpus, resumed)).shards_written == 0);
  require_same_files(whole, resumed);

  fs::remove_all(resumed.parent_path());
  fs::remove_all(whole.parent_path());
  fs::remove_all(corpus);
}

TEST_CASE("feature store: mismatched and malformed stores are refused by name") {
  const auto corpus = small_corpus();
  const auto root = temp_dir("errors");
  const auto out = root / "store";
  REQUIRE(extract(small_options(corpus, out)).complete);
  auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const store_error& e) {
      return int(e.get_code());
    }
    return -1;
  };
  using c = store_error::code;
  // Other arguments, other teachers, another corpus.
  auto o = small_options(corpus, out);
  o.top_k = 5;
  CHECK(code_of([&] { extract(o); }) == int(c::mismatch));
  CHECK_THROWS_WITH(extract(o), Catch::Contains("identity.arguments.top_k differs"));
  o = small_options(corpus, out);
  o.teachers = {models() / "llama", models() / "qwen3"};
  CHECK(code_of([&] { extract(o); }) == int(c::mismatch));
  write_text(corpus / "a.txt", "changed");
  CHECK_THROWS_WITH(extract(small_options(corpus, out)), Catch::Contains("identity.corpus[0].bytes differs"));
  // A JSON Lines record without a text field, named by file and line.
  const auto bad_corpus = temp_dir("bad_corpus");
  write_text(bad_corpus / "x.jsonl", "{\"text\": \"fine\"}\n{\"txt\": \"no\"}\n");
  CHECK_THROWS_WITH(extract(small_options(bad_corpus, root / "bad_corpus_store")), Catch::Contains("x.jsonl:2"));
  fs::remove_all(bad_corpus);
  // A folder with other files is not a store.
  fs::create_directories(root / "other");
  write_text(root / "other" / "x", "data");
  CHECK(code_of([&] { extract(small_options(corpus, root / "other")); }) == int(c::not_a_store));
  CHECK(code_of([&] { feature_store s(root / "other"); }) == int(c::not_a_store));

  // Damaged copies of the store.
  auto damaged = [&](const std::string& name, auto&& damage) {
    const auto d = root / name;
    fs::copy(out, d, fs::copy_options::recursive);
    damage(d);
    return code_of([&] { feature_store s(d); });
  };
  CHECK(damaged("bad_json", [](const fs::path& d) { write_text(d / "manifest.json", "{not json"); }) ==
        int(c::manifest_invalid));
  CHECK(damaged("bad_version", [](const fs::path& d) {
          auto m = nlohmann::ordered_json::parse(read_all(d / "manifest.json"));
          m["identity"]["version"] = 99;
          write_text(d / "manifest.json", m.dump());
        }) == int(c::manifest_invalid));
  CHECK(damaged("no_shard", [](const fs::path& d) { fs::remove(d / "shard-00001.safetensors"); }) ==
        int(c::missing_shard));
  CHECK(damaged("truncated", [](const fs::path& d) {
          const auto p = d / "shard-00000.safetensors";
          fs::resize_file(p, fs::file_size(p) / 2);
        }) == int(c::shard_invalid));
  CHECK(damaged("wrong_windows", [](const fs::path& d) {
          auto m = nlohmann::ordered_json::parse(read_all(d / "manifest.json"));
          m["shards"][0]["windows"] = m["shards"][0]["windows"].get<int>() + 1;
          write_text(d / "manifest.json", m.dump());
        }) == int(c::shard_invalid));
  fs::remove_all(root);
  fs::remove_all(corpus);
}
