// Paired rows of a feature store at the shared boundaries (fusion/features/store_pairs.hpp): which rows, their
// values, b's top-k there, batches of bounded size, and the held-out split by document. The expected
// rows are found here independently: the offsets both teachers' span ends reach, by set intersection.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <set>

#include "nexus/fusion/features/extract.hpp"
#include "nexus/fusion/features/store_pairs.hpp"
#include "reference.hpp"

using namespace nexus;
using namespace nexus::fusion;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nexus_pairs_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

/// A store of llama and qwen2 (different tokenizers) over `docs` JSON Lines documents.
fs::path make_store(const std::string& name, int docs, std::int64_t context = 24) {
  const auto dir = fresh_dir(name);
  {
    std::ofstream out(dir / "corpus.jsonl", std::ios::binary);
    for (int d = 0; d < docs; ++d)
      out << "{\"text\": \"Document " << d << ": the quick brown fox " << d * 7
          << " jumps over the lazy dog; naïve café, 東京 🙂. Then it rests.\"}\n";
  }
  extract_options o;
  o.teachers = {test::data_dir() / "models" / "llama", test::data_dir() / "models" / "qwen2"};
  o.corpus = {dir / "corpus.jsonl"};
  o.layers = {"0", "-1", "final"};
  o.top_k = 3;
  o.context = context;
  o.out = dir / "store";
  o.shard_size = 6000;
  extract(o);
  return dir / "store";
}

std::vector<pair_batch> all_batches(store_pairs& p) {
  std::vector<pair_batch> out;
  pair_batch b;
  while (p.next(b)) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("store pairs: rows at every shared boundary, with a's and b's states and b's top-k") {
  const feature_store s(make_store("rows", 5));
  REQUIRE(s.shards() > 1);
  const heldout_split split(s);
  const auto a = parse_store_layer(s, "0:-1"), b = parse_store_layer(s, "qwen2:final");
  CHECK(a == store_layer{0, "layer1"});
  CHECK(b == store_layer{1, "final"});
  store_pairs pairs(s, a, b, split, split_part::all, 7);
  const auto batches = all_batches(pairs);
  std::int64_t row = 0, total = 0;
  for (const auto& bt : batches) {
    REQUIRE(bt.rows <= 7);
    REQUIRE(bt.x.size() == std::size_t(bt.rows * s.hidden_size(0)));
    REQUIRE(bt.y.size() == std::size_t(bt.rows * s.hidden_size(1)));
    REQUIRE(bt.topk_ids.size() == std::size_t(bt.rows * 3));
    total += bt.rows;
  }
  // Expected: per window, every offset past its start where both have a token ending; the last such
  // token of each.
  std::int64_t expected = 0;
  std::size_t batch = 0;
  std::int64_t in_batch = 0;
  for (std::int64_t w = 0; w < s.windows(); ++w) {
    const auto wv = s.window(w);
    const auto sa = wv.spans(0), sb = wv.spans(1);
    std::set<std::int64_t> ends_a, ends_b;
    for (std::size_t i = 1; i < sa.size(); i += 2) ends_a.insert(sa[i]);
    for (std::size_t i = 1; i < sb.size(); i += 2) ends_b.insert(sb[i]);
    for (const auto o : ends_a) {
      if (!ends_b.count(o) || o <= wv.bytes().first) continue;
      auto last = [&](std::span<const std::int64_t> sp) {
        std::int64_t r = -1;
        for (std::size_t i = 1; i < sp.size(); i += 2)
          if (sp[i] == o) r = std::int64_t(i / 2);
        return r;
      };
      const auto ra = last(sa), rb = last(sb);
      REQUIRE(batch < batches.size());
      const auto& bt = batches[batch];
      const auto xa = wv.hidden(0, "layer1").row(ra), yb = wv.hidden(1, "final").row(rb);
      INFO("window " << w << " offset " << o);
      CHECK(std::equal(xa.begin(), xa.end(), bt.x.begin() + in_batch * s.hidden_size(0)));
      CHECK(std::equal(yb.begin(), yb.end(), bt.y.begin() + in_batch * s.hidden_size(1)));
      CHECK(bt.topk_ids[std::size_t(in_batch * 3)] == wv.topk_ids(1)[std::size_t(rb * 3)]);
      CHECK(bt.topk_logprobs[std::size_t(in_batch * 3 + 2)] == wv.topk_logprobs(1)[std::size_t(rb * 3 + 2)]);
      CHECK(bt.document[std::size_t(in_batch)] == wv.document());
      CHECK(bt.window[std::size_t(in_batch)] == w);
      ++expected, ++row;
      if (++in_batch == bt.rows) ++batch, in_batch = 0;
    }
  }
  CHECK(total == expected);
  CHECK(expected > 20);

  // Rewound and read in one batch: the same rows.
  store_pairs whole(s, a, b, split, split_part::all, 1 << 20);
  const auto one = all_batches(whole);
  REQUIRE(one.size() == 1);
  std::vector<float> joined;
  for (const auto& bt : batches) joined.insert(joined.end(), bt.x.begin(), bt.x.end());
  CHECK(joined == one[0].x);
  pairs.rewind();
  CHECK(all_batches(pairs).size() == batches.size());
}

TEST_CASE("store pairs: train and held-out never share a document; about a fifth held out") {
  const feature_store s(make_store("split", 10));
  const heldout_split split(s);
  REQUIRE(split.usable());
  CHECK(split.by_document());
  int held = 0;
  for (int d = 0; d < 10; ++d) held += split.is_heldout(d, 0);
  CHECK(held == 2);
  const auto a = parse_store_layer(s, "0:0"), b = parse_store_layer(s, "1:0");
  std::set<std::int64_t> train_docs, held_docs;
  std::int64_t rows[3] = {0, 0, 0};
  for (auto part : {split_part::all, split_part::train, split_part::heldout}) {
    store_pairs p(s, a, b, split, part, 5);
    for (const auto& bt : all_batches(p)) {
      rows[int(part)] += bt.rows;
      for (auto d : bt.document) {
        if (part == split_part::train) train_docs.insert(d);
        if (part == split_part::heldout) held_docs.insert(d);
        if (part != split_part::all) CHECK(split.is_heldout(d, 0) == (part == split_part::heldout));
      }
    }
  }
  CHECK(rows[1] + rows[2] == rows[0]);
  CHECK(rows[2] > 0);
  CHECK(held_docs.size() == 2);
  for (auto d : held_docs) CHECK(!train_docs.count(d));
}

TEST_CASE("store pairs: a store of one document is split by its windows") {
  const feature_store s(make_store("onedoc", 1, 8));
  REQUIRE(s.windows() >= 3);
  const heldout_split split(s);
  REQUIRE(split.usable());
  CHECK(!split.by_document());
  CHECK(split.is_heldout(0, s.windows() - 1));
  CHECK(!split.is_heldout(0, 0));
}

TEST_CASE("store pairs: unknown teachers and layers are usage errors naming what the store has") {
  const feature_store s(make_store("errors", 2));
  CHECK_THROWS_WITH(parse_store_layer(s, "7:0"), Catch::Contains("no teacher '7'") && Catch::Contains("1 qwen2"));
  CHECK_THROWS_WITH(parse_store_layer(s, "llama:5"),
                    Catch::Contains("no hidden states '5'") && Catch::Contains("layer0, layer1, final"));
  CHECK_THROWS_AS(parse_store_layer(s, "llama"), usage_error);
  CHECK_THROWS_AS(parse_store_layer(s, "llama:"), usage_error);
  CHECK(parse_store_layer(s, "llama:final") == store_layer{0, "final"});
  CHECK(parse_store_layer(s, "1:layer0") == store_layer{1, "layer0"});
}
