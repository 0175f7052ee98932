// Generation: greedy text generation equals transformers' generate on the fixtures (prompt ids
// through our tokenizer, generated ids, decoded text); sampling is reproducible with a seed.
#include <catch2/catch.hpp>

#include "nexus/generate/generate.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

TEST_CASE("greedy generation from text equals transformers' generate") {
  std::size_t checked = 0;
  for (const auto& dir : test::reference_dirs("models")) {
    if (!fs::exists(dir / "generate.json")) continue;
    INFO("fixture " << dir.filename().string());
    const auto ref = test::load_json(dir / "generate.json");
    const auto tok = tokenizer::load(dir);
    const auto prompt = tok.encode(ref["prompt"].get<std::string>(), true);
    CHECK(prompt == ref["prompt_ids"].get<std::vector<std::int32_t>>());
    const auto m = load_cpu_model(dir);
    generate_options opt;
    opt.max_new_tokens = std::int64_t(ref["greedy_ids"].size());
    std::string streamed;
    opt.on_text = [&](const std::string& s) { streamed += s; };
    const auto r = generate(*m, &tok, ref["prompt_ids"].get<std::vector<std::int32_t>>(), opt);
    CHECK(r.tokens == ref["greedy_ids"].get<std::vector<std::int32_t>>());
    CHECK(r.text == ref["greedy_text"].get<std::string>());
    CHECK(streamed == r.text);
    ++checked;
  }
  CHECK(checked >= 10);
}

TEST_CASE("sampling with a seed is reproducible, and options are validated") {
  const auto m = load_cpu_model(test::data_dir() / "models/llama");
  const std::vector<std::int32_t> prompt{1, 2, 3};
  generate_options opt;
  opt.max_new_tokens = 12;
  opt.sampling = {0.9f, 40, 0.95f, 1234};
  const auto a = generate(*m, nullptr, prompt, opt), b = generate(*m, nullptr, prompt, opt);
  CHECK(a.tokens == b.tokens);
  opt.sampling.seed = 99;
  CHECK(generate(*m, nullptr, prompt, opt).tokens != a.tokens);
  opt.sampling = {0.0f, 0, 1.0f, 0};  // greedy: the argmax chain
  CHECK(generate(*m, nullptr, prompt, opt).tokens == greedy_generate(*m, prompt, 12).tokens);
  opt.sampling.top_p = 0.0f;
  CHECK_THROWS_AS(generate(*m, nullptr, prompt, opt), usage_error);
  opt.sampling = {-1.0f, 0, 1.0f, 0};
  CHECK_THROWS_AS(generate(*m, nullptr, prompt, opt), usage_error);
}

TEST_CASE("top-k 1 is greedy whatever the temperature; stop tokens end generation") {
  const auto m = load_cpu_model(test::data_dir() / "models/qwen2");
  const std::vector<std::int32_t> prompt{5, 6, 7, 8};
  generate_options opt;
  opt.max_new_tokens = 10;
  opt.sampling = {2.0f, 1, 1.0f, 7};
  const auto greedy = greedy_generate(*m, prompt, 10).tokens;
  CHECK(generate(*m, nullptr, prompt, opt).tokens == greedy);
  opt.stop_tokens = {greedy[3]};
  const auto r = generate(*m, nullptr, prompt, opt);
  CHECK(r.reason == generate_result::stop::token);
  CHECK(r.tokens.back() == greedy[3]);
  CHECK(r.tokens.size() <= 4);
}
