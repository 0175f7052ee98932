// Taps are a selection of the hidden-state snapshots: the same values, joined the same way across
// prefill steps (compared with snapshots taken in the same steps); the log-probabilities are the log-softmax of the logits.
#include <catch2/catch.hpp>

#include <cmath>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/model/parity.hpp"
#include "reference.hpp"

using namespace nexus;

TEST_CASE("taps equal the hidden-state snapshots, in one step and in steps") {
  for (const auto* name : {"llama", "gemma2", "gpt_neox", "phi3", "llama_long"}) {
    INFO(name);
    const auto m = load_cpu_model(test::data_dir() / "models" / name);
    const auto L = m->arch().dims.num_layers;
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 70; ++i) ids.push_back(std::int32_t((i * 37 + 11) % m->arch().dims.vocab_size));
    auto c = m->new_cache(70);
    const auto whole = m->forward(ids, c, {.hidden_states = true});
    for (const std::int64_t chunk : {0, 16, 33}) {
      INFO("chunk_rows " << chunk);
      // Snapshots in the same steps (steps of other sizes may round differently: GEMM vs GEMV).
      auto c0 = m->new_cache(70);
      const auto snap = m->forward(ids, c0, {.hidden_states = true, .chunk_rows = chunk});
      for (std::size_t i = 0; i < snap.hidden.size(); ++i)
        CHECK(compare(snap.hidden[i].data, whole.hidden[i].data).within());
      tap_request req{.layers = {0, -1, L - 1, 0}, .final_norm = true, .top_k = 5, .distribution = true};
      auto c1 = m->new_cache(70);
      const auto r = m->forward(ids, c1, {.all_logits = false, .chunk_rows = chunk, .taps = req});
      CHECK(r.hidden.empty());  // snapshots were not asked for
      REQUIRE(r.taps.layers.size() == 4);
      CHECK(r.taps.layers[0].data == snap.hidden[1].data);
      CHECK(r.taps.layers[1].data == snap.hidden[std::size_t(L)].data);
      CHECK(r.taps.layers[2].data == snap.hidden[std::size_t(L)].data);
      CHECK(r.taps.layers[3].data == snap.hidden[1].data);
      CHECK(r.taps.layers[0].shape == shape_t{70, m->arch().dims.hidden_size});
      CHECK(r.taps.final_norm.data == snap.hidden.back().data);
      // Only the last position's logits were asked for; the log-probabilities cover every position.
      CHECK(r.logits.shape == shape_t{1, m->arch().dims.vocab_size});
      const auto V = std::size_t(m->arch().dims.vocab_size);
      REQUIRE(r.taps.logprobs.shape == shape_t{70, std::int64_t(V)});
      REQUIRE(r.taps.top_logprobs.shape == shape_t{70, 5});
      for (std::size_t p = 0; p < 70; ++p) {
        const float* logits = snap.logits.data.data() + p * V;
        const float* lp = r.taps.logprobs.data.data() + p * V;
        double z = 0;
        for (std::size_t i = 0; i < V; ++i) z += std::exp(double(lp[i]));
        CHECK(std::abs(z - 1) < 1e-5);
        // log-softmax differs from the logits by one constant per row
        CHECK(std::abs((lp[3] - lp[0]) - (logits[3] - logits[0])) < 1e-4f);
        const auto best = std::size_t(std::max_element(logits, logits + V) - logits);
        CHECK(std::size_t(r.taps.top_ids[p * 5]) == best);
        for (std::size_t j = 0; j < 5; ++j) {
          CHECK(r.taps.top_logprobs.data[p * 5 + j] == lp[r.taps.top_ids[p * 5 + j]]);
          if (j) CHECK(r.taps.top_logprobs.data[p * 5 + j] <= r.taps.top_logprobs.data[p * 5 + j - 1]);
        }
      }
    }
  }
}

TEST_CASE("no taps, no tap outputs; a layer outside the model is a usage error") {
  const auto m = load_cpu_model(test::data_dir() / "models" / "llama");
  const std::vector<std::int32_t> ids{1, 2, 3};
  auto c = m->new_cache(3);
  const auto r = m->forward(ids, c);
  CHECK(r.taps.layers.empty());
  CHECK(r.taps.final_norm.data.empty());
  CHECK(r.taps.top_ids.empty());
  auto c2 = m->new_cache(3);
  CHECK_THROWS_AS(m->forward(ids, c2, {.taps = {.layers = {2}}}), usage_error);
  auto c3 = m->new_cache(3);
  CHECK_THROWS_AS(m->forward(ids, c3, {.taps = {.layers = {-3}}}), usage_error);
  auto c4 = m->new_cache(3);
  CHECK(m->forward(ids, c4, {.taps = {.layers = {-2}}}).taps.layers.at(0).shape == shape_t{3, 64});
}
