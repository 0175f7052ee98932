// Generation: greedy text generation equals transformers' generate on the fixtures (prompt ids
// through our tokenizer, generated ids, decoded text); sampling is reproducible with a seed.
#include <catch2/catch.hpp>

#include <fstream>

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
    opt.stop_tokens = std::vector<std::int32_t>{};  // the references are pure greedy, EOS disabled
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

TEST_CASE("generation ends at the model's own end tokens by default (generation_config.json eos_token_id)") {
  const auto src = test::data_dir() / "models/llama";
  const auto m = load_cpu_model(src);
  const auto base = tokenizer::load(src);
  CHECK(base.end_of_generation() == std::vector<std::int32_t>{2});  // eos, and generation_config.json's 2 once
  const std::vector<std::int32_t> prompt{1, 5, 9};
  const auto greedy = greedy_generate(*m, prompt, 8).tokens;
  // A copy of the tokenizer whose generation_config.json lists a second end token: greedy[2].
  const auto dir = fs::temp_directory_path() / "nexus_test_end_of_generation";
  fs::create_directories(dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  auto write = [&](const std::string& body) { std::ofstream(dir / "generation_config.json") << body; };
  write(R"({"eos_token_id": [2, )" + std::to_string(greedy[2]) + "]}");
  const auto tok = tokenizer::load(dir);
  CHECK(tok.end_of_generation() == std::vector<std::int32_t>{2, greedy[2]});
  generate_options opt;
  opt.max_new_tokens = 8;
  auto r = generate(*m, &tok, prompt, opt);
  CHECK(r.reason == generate_result::stop::token);
  CHECK(r.tokens == std::vector<std::int32_t>(greedy.begin(), greedy.begin() + 3));
  opt.stop_tokens = std::vector<std::int32_t>{};  // an empty list: no end token at all
  CHECK(generate(*m, &tok, prompt, opt).tokens == greedy);
  write(R"({"eos_token_id": 1000000})");
  CHECK_THROWS_WITH(tokenizer::load(dir), Catch::Contains("generation_config.json") && Catch::Contains("1000000"));
  write(R"({"eos_token_id": "x"})");
  CHECK_THROWS_AS(tokenizer::load(dir), config_error);
  fs::remove_all(dir);
}

TEST_CASE("stop strings end the text before them, and streaming never shows a piece of one") {
  nexus::stop_scanner a({"ab"});
  CHECK(a.push("xa") == "x");  // "a" could begin "ab": held back
  CHECK(a.push("b") == "");
  CHECK(a.stopped());
  CHECK(a.text() == "x");
  nexus::stop_scanner b({"abd", ""});  // an empty stop string never matches
  CHECK(b.push("xa") == "x");
  CHECK(b.push("b") == "");
  CHECK(b.push("c") == "abc");  // "abc" begins no stop string: released
  CHECK(b.push("ab") == "");
  CHECK(b.flush() == "ab");  // the end: nothing is held
  CHECK_FALSE(b.stopped());
  CHECK(b.text() == "xabcab");
  nexus::stop_scanner c({"\xC3\xA9!", "zz"});
  CHECK(c.push("caf\xC3\xA9") == "caf");  // an é that could begin "é!" stays whole
  CHECK(c.push("!z") == "");
  CHECK(c.text() == "caf");
  // Through generate(): the text and the streamed text both stop before the stop string.
  const auto dir = test::data_dir() / "models/llama";
  const auto m = load_cpu_model(dir);
  const auto tok = tokenizer::load(dir);
  generate_options opt;
  opt.max_new_tokens = 12;
  opt.stop_tokens = std::vector<std::int32_t>{};
  const auto prompt = tok.encode("Hello", true);
  const auto full = generate(*m, &tok, prompt, opt).text;
  REQUIRE(full.size() >= 4);
  opt.stop_strings = {full.substr(2, 2)};
  std::string streamed;
  opt.on_text = [&](const std::string& s) { streamed += s; };
  const auto r = generate(*m, &tok, prompt, opt);
  CHECK(r.reason == generate_result::stop::string);
  CHECK(r.text == full.substr(0, full.find(full.substr(2, 2))));
  CHECK(streamed == r.text);
}
