// Text generation: prefill the prompt once, then one token per step through the KV cache, with
// sampling, stop tokens, stop strings, a streaming callback, and timing.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "nexus/backend/cpu/model.hpp"
#include "nexus/generate/sampling.hpp"
#include "nexus/generate/stop_strings.hpp"
#include "nexus/tokenizer/stream.hpp"

namespace nexus {

struct generate_options {
  std::int64_t max_new_tokens = 32;
  sampling_options sampling;
  // The tokens that end generation. Unset: the model's own (tokenizer::end_of_generation(): eos,
  // generation_config.json's eos_token_id, GGUF eot/eom); an empty list: none.
  std::optional<std::vector<std::int32_t>> stop_tokens;
  std::vector<std::string> stop_strings;            // generation ends before the first one the text contains
  std::function<void(const std::string&)> on_text;  // streamed text, complete characters only
  // each new token and the logits it was chosen from, before any of its text goes to on_text
  std::function<void(std::int32_t, std::span<const float>)> on_token;
  bool keep_logits = false;  // return the logits each token was chosen from
};

struct generate_result {
  std::vector<std::int32_t> tokens;        // new tokens (a stop token included when it ended generation)
  std::string text;                        // their text, cut before a stop string (generate/stop_strings.hpp)
  std::vector<std::vector<float>> logits;  // with keep_logits: the logits behind each token
  enum class stop { length, token, string } reason = stop::length;
  double prefill_seconds = 0, decode_seconds = 0;
  std::int64_t prompt_tokens = 0;
  double prefill_tokens_per_second() const { return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0; }
  double decode_tokens_per_second() const {
    return decode_seconds > 0 && tokens.size() > 1 ? double(tokens.size() - 1) / decode_seconds : 0;
  }
};

/// `tok` may be null: then no text, no stop strings, no streaming.
inline generate_result generate(const model& m, const tokenizer* tok, std::span<const std::int32_t> prompt,
                                const generate_options& opt) {
  if (prompt.empty()) throw usage_error("generate", "empty prompt");
  if (opt.max_new_tokens < 0) throw usage_error("--max-new-tokens", "must be ≥ 0");
  if (!opt.stop_strings.empty() && !tok) throw usage_error("generate", "stop strings need a tokenizer");
  const std::vector<std::int32_t> stop_tokens = opt.stop_tokens ? *opt.stop_tokens
                                                : tok           ? tok->end_of_generation()
                                                                : std::vector<std::int32_t>{};
  generate_result r;
  r.prompt_tokens = std::int64_t(prompt.size());
  if (opt.max_new_tokens == 0) return r;
  sampler pick(opt.sampling);
  auto cache = m.new_cache(std::int64_t(prompt.size()) + opt.max_new_tokens);
  std::optional<stream_decoder> stream;
  if (tok) stream.emplace(*tok);
  stop_scanner stops(opt.stop_strings);  // the text, cut before a stop string; streamed as it becomes safe
  using clock = std::chrono::steady_clock;

  auto t0 = clock::now();
  auto out = m.forward(prompt, cache, {.all_logits = false});
  r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  t0 = clock::now();
  for (std::int64_t i = 0; i < opt.max_new_tokens; ++i) {
    const auto next = pick.next(out.logits.data);
    r.tokens.push_back(next);
    if (opt.keep_logits) r.logits.push_back(out.logits.data);
    if (opt.on_token) opt.on_token(next, out.logits.data);
    if (std::find(stop_tokens.begin(), stop_tokens.end(), next) != stop_tokens.end()) {
      r.reason = generate_result::stop::token;
      break;
    }
    if (stream) {
      const auto shown = stops.push(stream->push(next));
      if (opt.on_text && !shown.empty()) opt.on_text(shown);
      if (stops.stopped()) {
        r.reason = generate_result::stop::string;
        break;
      }
    }
    if (i + 1 < opt.max_new_tokens) out = m.forward(std::span(&r.tokens.back(), 1), cache, {.all_logits = false});
  }
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  if (stream && r.reason != generate_result::stop::string) {
    auto rest = stops.push(stream->finish());
    if (!stops.stopped()) rest += stops.flush();
    if (stops.stopped()) r.reason = generate_result::stop::string;
    if (opt.on_text && !rest.empty()) opt.on_text(rest);
  }
  r.text = stops.text();
  return r;
}

/// Greedy decoding of `new_tokens` tokens, keeping each step's logits (parity checks).
inline generate_result greedy_generate(const model& m, std::span<const std::int32_t> prompt, std::int64_t new_tokens) {
  generate_options opt;
  opt.max_new_tokens = new_tokens;
  opt.keep_logits = true;
  return generate(m, nullptr, prompt, opt);
}

}  // namespace nexus
