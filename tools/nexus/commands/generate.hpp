// `nexus generate`: text from a prompt, streaming to stdout, through one model (checkpoint folder or .gguf
// file, optionally through its chat template) or through a .nexus bundle (router, cascade or mixture).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../chat_prompt.hpp"
#include "../command.hpp"
#include "../options.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/generate/generate.hpp"

namespace nexus::cli {

struct generate_args {
  std::string dir, prompt;
  std::int64_t max_new_tokens = 32;
  float temperature = 0, top_p = 1;
  int top_k = 0;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;
  bool no_stream = false, chat = false, json = false;  // json: one object at the end, no streaming
  device_args device;
  std::size_t max_bytes = 256;  // a .nexus bundle
  std::string mode = "auto";    // a .nexus bundle: fusion::parse_system_mode
};

/// One model: the prompt (or with --chat, one user message through its chat template), sampled.
inline int generate_text(const generate_args& a) {
  const auto tok = tokenizer::load(a.dir);  // tokenizer.json, or the tokenizer in a .gguf file's metadata
  const auto m = load_model(a.dir, a.device);
  // With --chat the prompt is one user message through the model's chat template, which writes the
  // special tokens itself.
  const auto text = a.chat ? chat_prompt(load_chat_template(a.dir), tok, a.prompt) : a.prompt;
  const auto prompt = tok.encode(text, !a.chat);
  generate_options opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.sampling = {a.temperature, a.top_k, a.top_p, a.seed};
  opt.stop_strings = a.stop;
  if (!a.no_stream && !a.json)
    opt.on_text = [](const std::string& s) {
      fmt::print("{}", s);
      std::fflush(stdout);
    };
  const auto r = generate(*m, &tok, prompt, opt);
  const char* stopped = r.reason == generate_result::stop::length  ? "length"
                        : r.reason == generate_result::stop::token ? "stop token"
                                                                   : "stop string";
  if (a.json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"model", a.dir},
                                              {"prompt", a.prompt},
                                              {"text", utf8::lossy(r.text)},
                                              {"prompt_tokens", prompt.size()},
                                              {"new_tokens", r.tokens.size()},
                                              {"tokens", r.tokens},
                                              {"prefill_tokens_per_second", r.prefill_tokens_per_second()},
                                              {"decode_tokens_per_second", r.decode_tokens_per_second()},
                                              {"stopped_by", stopped}}
                           .dump(2));
    return 0;
  }
  if (a.no_stream) fmt::print("{}", r.text);
  fmt::print("\n");
  std::fflush(stdout);  // the text before the statistics on stderr
  fmt::print(stderr, "{} prompt tokens, {} new tokens; prefill {:.1f} tok/s, decode {:.1f} tok/s; stopped by {}\n",
             prompt.size(), r.tokens.size(), r.prefill_tokens_per_second(), r.decode_tokens_per_second(), stopped);
  return 0;
}

/// A .nexus bundle: greedy through the system (router, cascade or mixture), bytes at a time.
inline int generate_bundle(const generate_args& a) {
  auto sys = fusion::load_bundle(a.dir, {.cpu = {.threads = a.device.threads}});
  const auto m = fusion::parse_system_mode(a.mode);
  const bool stream = !a.no_stream && !a.json;
  const auto t0 = std::chrono::steady_clock::now();
  std::string routed;
  fusion::system_generate_options o;
  o.on_route = [&](std::size_t t) { routed = sys.manifest().teachers[t].name; };  // routed once, by generate
  o.max_bytes = a.max_bytes;
  o.stop = a.stop;
  o.mode = m;
  if (stream)
    o.on_text = [](std::string_view s) {
      fmt::print("{}", s);
      std::fflush(stdout);
    };
  const auto out = sys.generate(a.prompt, o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.json) {
    nlohmann::ordered_json j{{"bundle", a.dir}, {"prompt", a.prompt},  {"mode", a.mode},
                             {"text", out},     {"bytes", out.size()}, {"seconds", s}};
    if (!routed.empty()) j["routed"] = routed;
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  if (!stream) fmt::print("{}", out);
  fmt::print("\n");
  std::fflush(stdout);
  fmt::print(stderr, "{} bytes in {:.1f} s{}\n", out.size(), s, routed.empty() ? "" : " (routed to " + routed + ")");
  return 0;
}

class generate_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("generate", "Generate text from a prompt, streaming to stdout");
    sub_->add_option("dir", a_.dir,
                     "checkpoint folder with tokenizer.json, .gguf file, Hugging Face id, or .nexus bundle")
        ->required()
        ->transform(model_name);
    sub_->add_option("--prompt", a_.prompt, "prompt text")->required();
    sub_->add_option("--max-new-tokens", a_.max_new_tokens, "tokens to generate at most")
        ->check(CLI::Range(0, 1 << 20));
    sub_->add_option("--temperature", a_.temperature, "0: greedy")->check(CLI::Range(0.0, 100.0));
    sub_->add_option("--top-k", a_.top_k, "sample from the k most likely tokens (0: all)")
        ->check(CLI::Range(0, 1 << 30));
    sub_->add_option("--top-p", a_.top_p, "sample from the smallest set reaching this probability")
        ->check(CLI::Range(0.0, 1.0));
    sub_->add_option("--seed", a_.seed, "sampling seed");
    sub_->add_option("--stop", a_.stop, "stop once the text contains this (repeatable)");
    sub_->add_flag("--no-stream", a_.no_stream, "print the text at the end instead of streaming");
    sub_->add_flag("--json", a_.json, "print one JSON object at the end (text, tokens, speeds, why it stopped)");
    sub_->add_option("--max-bytes", a_.max_bytes, "a .nexus bundle: bytes to generate at most")
        ->check(CLI::Range(0, 1 << 20));
    sub_->add_option("--mode", a_.mode, "a .nexus bundle: auto (the router if fitted), mixture, cascade, router");
    sub_->add_flag("--chat", a_.chat, "send the prompt as a user message through the model's chat template");
    add_device_options(*sub_, a_.device);
  }

  int run() override {
    if (fs::path(a_.dir).extension() == ".nexus") {
      refuse({"--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--chat", "--device", "--precision"},
             "not for a .nexus bundle, which generates greedily, byte by byte, on the CPU (its options: --max-bytes, "
             "--mode, --stop, --threads, --no-stream)");
      return generate_bundle(a_);
    }
    refuse({"--max-bytes", "--mode"}, "only for a .nexus bundle");
    return generate_text(a_);
  }

 private:
  generate_args a_;
};

}  // namespace nexus::cli
