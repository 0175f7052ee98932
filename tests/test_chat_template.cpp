// Chat templates against transformers' apply_chat_template (tokenize=False): the template from
// SmolLM2's GGUF, transcriptions of common published templates and one template per construct of
// the Jinja subset, over several conversations, byte for byte; the errors templates raise; and
// named errors with line and column for what the subset does not support.
// Reference: tests/data/chat_templates/ (tools/fixtures/make_chat_templates.py).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "nexus/chat/chat_template.hpp"
#include "nexus/io/model_cache.hpp"
#include "reference.hpp"

using namespace nexus;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The error message of rendering `source`, or "" when it renders.
std::string error_of(const std::string& source,
                     const nlohmann::ordered_json& messages = nlohmann::ordered_json::array({{{"role", "user"},
                                                                                              {"content", "x"}}})) {
  try {
    chat::render_chat(source, messages);
  } catch (const template_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("chat templates render as transformers' apply_chat_template") {
  const auto dir = test::data_dir() / "chat_templates";
  std::map<std::string, std::unique_ptr<chat::chat_template>> templates;
  std::ifstream in(dir / "cases.jsonl");
  REQUIRE(in);
  std::size_t cases = 0, rendered = 0, raised = 0, mismatches = 0;
  for (std::string line; std::getline(in, line); ++cases) {
    const auto c = nlohmann::ordered_json::parse(line);
    const auto name = c["template"].get<std::string>();
    auto& t = templates[name];
    if (!t) t = std::make_unique<chat::chat_template>(read_file(dir / (name + ".jinja")), name + ".jinja");
    chat::options opts;
    opts.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    opts.extra = c["variables"];
    INFO(name << " / " << c["conversation"].get<std::string>()
              << (opts.add_generation_prompt ? " + generation prompt" : ""));
    if (c.contains("expected")) {
      std::string ours;
      try {
        ours = t->render(c["messages"], opts);
      } catch (const error& e) {
        ours = std::string("ERROR: ") + e.what();
      }
      if (ours != c["expected"].get<std::string>() && ++mismatches <= 8)
        CHECK(ours == c["expected"].get<std::string>());
      ++rendered;
    } else if (c["error"] == "raise") {
      ++raised;
      CHECK_THROWS_AS(t->render(c["messages"], opts), template_raised_error);
      CHECK_THROWS_WITH(t->render(c["messages"], opts), Catch::Contains(c["message"].get<std::string>()));
    } else if (c["error"] == "usage") {
      CHECK_THROWS_AS(t->render(c["messages"], opts), usage_error);
    } else {
      INFO(c["message"].get<std::string>());
      CHECK_THROWS_AS(t->render(c["messages"], opts), template_error);
    }
  }
  CHECK(cases >= 400);
  CHECK(rendered >= 350);
  CHECK(raised >= 20);
  CHECK(mismatches == 0);
  CHECK(templates.size() >= 24);
}

TEST_CASE("chat templates: from GGUF metadata and from model folders", "[real]") {
  const auto dir = test::data_dir() / "chat_templates";
  const auto smol = cached_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  const gguf::file f(smol);
  const auto t = chat::template_from_gguf(f);
  REQUIRE(t);
  CHECK(*t == read_file(dir / "smollm2.jinja"));
  // the demo's path: tokenizer and template from one file, special tokens from the tokenizer
  const auto tok = tokenizer::from_gguf(f);
  chat::options generation;
  generation.add_generation_prompt = true;
  const auto opts = chat::with_special_tokens(tok, generation);
  CHECK(opts.bos_token == "<|im_start|>");
  CHECK(opts.eos_token == "<|im_end|>");
  const auto text =
      chat::chat_template(*t).render(std::vector<chat::message>{{"user", "What is the capital of France?"}}, opts);
  CHECK(text ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n");

  const auto tmp = fs::temp_directory_path() / ("nexus_chat_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  CHECK_FALSE(chat::template_from_folder(tmp));
  std::ofstream(tmp / "tokenizer_config.json") << R"({"chat_template": "{{ messages[0].content }}"})";
  CHECK(chat::template_from_folder(tmp) == "{{ messages[0].content }}");
  std::ofstream(tmp / "tokenizer_config.json")
      << R"({"chat_template": [{"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}]})";
  CHECK(chat::template_from_folder(tmp) == "d");
  std::ofstream(tmp / "tokenizer_config.json") << R"({"chat_template": [{"name": "tool_use", "template": "t"}]})";
  CHECK_THROWS_AS(chat::template_from_folder(tmp), config_error);
  std::ofstream(tmp / "tokenizer_config.json") << R"({"chat_template": 3})";
  CHECK_THROWS_AS(chat::template_from_folder(tmp), config_error);
  std::ofstream(tmp / "chat_template.jinja") << "from the jinja file";
  CHECK(chat::template_from_folder(tmp) == "from the jinja file");
  fs::remove_all(tmp);
}

TEST_CASE("chat templates: what the subset does not support is a named error with its position") {
  CHECK_THROWS_AS(chat::chat_template("{% include 'x' %}"), template_error);
  CHECK_THROWS_WITH(chat::chat_template("line one\n  {% include 'x' %}"),
                    Catch::Contains("line 2, column 6") && Catch::Contains("'include' is not supported"));
  CHECK_THROWS_WITH(chat::chat_template("{{ x | frobnicate }}"),
                    Catch::Contains("filter 'frobnicate' is not supported") && Catch::Contains("column 8"));
  CHECK_THROWS_WITH(chat::chat_template("{{ x is frobnicated }}"),
                    Catch::Contains("test 'frobnicated' is not supported"));
  CHECK_THROWS_WITH(chat::chat_template("{% if x %}open"), Catch::Contains("missing {% endif %}"));
  CHECK_THROWS_WITH(chat::chat_template("{{ x "), Catch::Contains("not closed"));
  CHECK_THROWS_WITH(chat::chat_template("{# never closed"), Catch::Contains("comment not closed"));
  CHECK_THROWS_WITH(chat::chat_template("{{ 'abc }}"), Catch::Contains("string literal not closed"));
  CHECK_THROWS_WITH(chat::chat_template("{{ a ; b }}"), Catch::Contains("unexpected character ';'"));
  CHECK_THROWS_WITH(chat::chat_template("{% for x in y recursive %}{% endfor %}"), Catch::Contains("recursive"));
  CHECK_THROWS_WITH(chat::chat_template("{% endif %}"), Catch::Contains("endif"));
  CHECK_THROWS_WITH(chat::chat_template("{{ 99999999999999999999 }}"), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(chat::chat_template("{% raw %}x{% endraw %}"), Catch::Contains("'raw' is not supported"));
  // while rendering: the template's own error, and type errors at the expression
  CHECK_THROWS_AS(
      chat::render_chat("{{ raise_exception('no system role') }}", nlohmann::ordered_json::array({{{"role", "user"}}})),
      template_raised_error);
  CHECK(error_of("{{ raise_exception('no system role') }}").find("no system role") != std::string::npos);
  CHECK(error_of("ab\n{{ 'a' + 1 }}").find("line 2, column 8: unsupported operand types for +: 'str' and 'int'") !=
        std::string::npos);
  CHECK(error_of("{{ nothing.attr }}").find("'nothing' is undefined") != std::string::npos);
  CHECK(error_of("{{ 1 // 0 }}").find("division") != std::string::npos);
  CHECK(error_of("{% set x = 1 %}{% set x.y = 2 %}").find("not a namespace") != std::string::npos);
  CHECK(error_of("{% set ns = namespace() %}{% set ns._x = 2 %}").find("'_'") != std::string::npos);
  CHECK(error_of("{{ undefined_fn() }}").find("'undefined_fn' is undefined") != std::string::npos);
  CHECK(error_of("{{ 'x'.frobnicate() }}").find("no method 'frobnicate'") != std::string::npos);
  CHECK(error_of("{{ none | tojson }}{{ x | tojson }}").find("not JSON serializable") != std::string::npos);
  CHECK(error_of("{% for x in 3 %}{% endfor %}").find("'int' object is not iterable") != std::string::npos);
  // hostile templates end in an error, not a crash or exhausted memory
  CHECK(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nested deeper") != std::string::npos);
  CHECK_THROWS_WITH(chat::chat_template("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
                    Catch::Contains("nesting deeper"));
  CHECK_THROWS_WITH(chat::chat_template(std::string(3000, '-') + "{{ " + std::string(3000, '-') + "1 }}"),
                    Catch::Contains("nesting deeper"));
  CHECK(error_of("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}")
            .find("longer than") != std::string::npos);
  CHECK(error_of("{{ 'ab' * 1000000000000 }}").find("too long") != std::string::npos);
  CHECK_THROWS_AS(chat::render_chat("{{ 1 }}", nlohmann::ordered_json::array()), usage_error);
  CHECK_THROWS_AS(chat::render_chat("{{ 1 }}", nlohmann::ordered_json::object()), usage_error);
}
