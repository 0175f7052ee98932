// The OpenAI-compatible API of `nexus serve`, without the HTTP: what a request may hold (checked,
// every problem an api_error with the status and the OpenAI error type), and the JSON of responses
// and of server-sent-event chunks. commands/serve.hpp puts it on an HTTP server (cpp-httplib).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/tokenizer/utf8.hpp"

namespace nexus::serve {

using json = nlohmann::ordered_json;

/// An error the client gets as {"error": {"message", "type", "param", "code"}} with HTTP `status`.
struct api_error {
  int status = 400;
  std::string message, type = "invalid_request_error", param, code;

  json body() const {
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code.empty() ? json(nullptr) : json(code)}}}};
  }
};

inline api_error bad_request(std::string message, std::string param = {}, std::string code = {}) {
  return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

/// An error of `status` with no parameter or code: "server_error" from 500 on.
inline api_error http_error(int status, std::string message) {
  return {status, std::move(message), status >= 500 ? "server_error" : "invalid_request_error", "", ""};
}

/// One completion or chat completion request, checked.
struct request {
  bool chat = false;
  std::string prompt;  // /v1/completions
  json messages;       // /v1/chat/completions: [{role, content}, ...]
  std::int64_t max_tokens = 16;
  float temperature = 1.0f, top_p = 1.0f;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;
  bool stream = false;
  std::optional<int> logprobs;  // the chosen tokens' log-probabilities, with this many alternatives each
};

struct limits {
  std::int64_t max_tokens = 4096;  // the most a request may ask for
};

/// body[key], or null when absent or null.
inline const json* field_of(const json& body, const char* key) {
  const auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}
/// A number field in [lo, hi], `dflt` when absent.
inline double number_field(const json& body, const char* key, double lo, double hi, double dflt) {
  const auto* v = field_of(body, key);
  if (!v) return dflt;
  if (!v->is_number()) throw bad_request(std::string("'") + key + "' must be a number", key);
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    throw bad_request(std::string("'") + key + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() + "]", key);
  return x;
}

/// Parses and checks a request body for the served model `model_id`.
inline request parse_request(const std::string& text, bool chat, const std::string& model_id, const limits& lim) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    throw bad_request(std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw bad_request("the body must be a JSON object");
  request r;
  r.chat = chat;
  const auto* model = field_of(body, "model");
  if (!model || !model->is_string()) throw bad_request("'model' is required (a string)", "model");
  if (model->get<std::string>() != model_id)
    throw api_error{
        404, "The model '" + model->get<std::string>() + "' does not exist; this server serves '" + model_id + "'",
        "invalid_request_error", "model", "model_not_found"};
  if (chat) {
    const auto* m = field_of(body, "messages");
    if (!m || !m->is_array() || m->empty()) throw bad_request("'messages' must be a non-empty array", "messages");
    for (const auto& msg : *m) {
      if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
        throw bad_request("each message needs a 'role' string", "messages");
      if (!msg.contains("content") || !msg["content"].is_string())
        throw bad_request("each message needs a 'content' string (parts lists are not supported)", "messages");
    }
    r.messages = *m;
  } else {
    const auto* p = field_of(body, "prompt");
    if (!p || !p->is_string())
      throw bad_request("'prompt' must be a string (lists of prompts are not supported)", "prompt");
    r.prompt = p->get<std::string>();
  }
  const char* max_key = chat && field_of(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (const auto* v = field_of(body, max_key)) {
    if (!v->is_number_integer() || v->get<std::int64_t>() < 1 || v->get<std::int64_t>() > lim.max_tokens)
      throw bad_request(
          std::string("'") + max_key + "' must be an integer in [1, " + std::to_string(lim.max_tokens) + "]", max_key);
    r.max_tokens = v->get<std::int64_t>();
  } else if (chat) {
    r.max_tokens = std::min<std::int64_t>(lim.max_tokens, 256);
  }
  r.temperature = float(number_field(body, "temperature", 0, 2, 1));
  r.top_p = float(number_field(body, "top_p", 0, 1, 1));
  if (r.top_p == 0) throw bad_request("'top_p' must be above 0", "top_p");
  if (const auto* v = field_of(body, "seed")) {
    if (!v->is_number_integer()) throw bad_request("'seed' must be an integer", "seed");
    r.seed = std::uint64_t(v->get<std::int64_t>());
  }
  if (const auto* v = field_of(body, "stop")) {
    if (v->is_string()) r.stop = {v->get<std::string>()};
    else if (v->is_array() && v->size() <= 4 &&
             std::all_of(v->begin(), v->end(), [](const json& s) { return s.is_string(); }))
      for (const auto& s : *v) r.stop.push_back(s.get<std::string>());
    else throw bad_request("'stop' must be a string or a list of at most 4 strings", "stop");
  }
  if (const auto* v = field_of(body, "stream")) {
    if (!v->is_boolean()) throw bad_request("'stream' must be true or false", "stream");
    r.stream = v->get<bool>();
  }
  if (const auto* v = field_of(body, "n"); v && !(v->is_number_integer() && v->get<std::int64_t>() == 1))
    throw bad_request("only n = 1 is supported", "n");
  // logprobs: /v1/completions "logprobs": N (alternatives, 0-5); chat "logprobs": true and "top_logprobs": N (0-20).
  if (const auto* v = field_of(body, "logprobs")) {
    if (chat) {
      if (!v->is_boolean()) throw bad_request("'logprobs' must be true or false", "logprobs");
      if (v->get<bool>()) r.logprobs = 0;
    } else {
      if (!v->is_number_integer() || v->get<std::int64_t>() < 0 || v->get<std::int64_t>() > 5)
        throw bad_request("'logprobs' must be an integer in [0, 5]", "logprobs");
      r.logprobs = int(v->get<std::int64_t>());
    }
  }
  if (const auto* v = field_of(body, "top_logprobs"); chat && v) {
    if (!v->is_number_integer() || v->get<std::int64_t>() < 0 || v->get<std::int64_t>() > 20)
      throw bad_request("'top_logprobs' must be an integer in [0, 20]", "top_logprobs");
    if (!r.logprobs) throw bad_request("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    r.logprobs = int(v->get<std::int64_t>());
  }
  return r;
}

inline std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// One generated token's log-probability and the most likely alternatives at its position.
struct token_logprob {
  std::string text;  // the token's bytes (may be part of a character)
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
  bool in_text = true;  // false for a special token: the completion's text leaves it out (text_offset skips it)

  std::size_t text_bytes() const { return in_text ? text.size() : 0; }
};

/// What a generation produced, for the response.
struct outcome {
  std::string text;
  std::string finish_reason = "stop";  // "stop" (a stop string or an end token) or "length"
  std::int64_t prompt_tokens = 0, completion_tokens = 0;
  std::optional<std::vector<token_logprob>> logprobs = std::nullopt;  // when asked for
};

/// `s` with every byte that does not begin a complete UTF-8 character replaced by U+FFFD (JSON strings
/// must be valid UTF-8; a token may hold part of a character: its exact bytes go in "bytes").
inline std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto n = std::min(utf8::sequence_length(static_cast<unsigned char>(s[i])), s.size() - i);
    if (n > 0 && utf8::valid(s.substr(i, n))) out.append(s.substr(i, n)), i += n;
    else out += "\xEF\xBF\xBD", ++i;
  }
  return out;
}

inline json byte_values(std::string_view s) {
  json b = json::array();
  for (const char c : s) b.push_back(int(static_cast<unsigned char>(c)));
  return b;
}

/// The "logprobs" of a choice: the completions form (tokens, token_logprobs, top_logprobs, text_offset,
/// counted from `offset`: where these tokens start in the completion) or the chat form (content: [{token,
/// logprob, bytes, top_logprobs}]).
inline json logprobs_json(const request& r, std::span<const token_logprob> lp, std::size_t offset = 0) {
  if (r.chat) {
    json content = json::array();
    for (const auto& t : lp) {
      json top = json::array();
      for (const auto& [text, v] : t.top)
        top.push_back({{"token", printable(text)}, {"logprob", v}, {"bytes", byte_values(text)}});
      content.push_back({{"token", printable(t.text)},
                         {"logprob", t.logprob},
                         {"bytes", byte_values(t.text)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  std::size_t at = offset;
  for (const auto& t : lp) {
    tokens.push_back(printable(t.text));
    values.push_back(t.logprob);
    json top = json::object();
    for (const auto& [text, v] : t.top) top[printable(text)] = v;
    tops.push_back(top);
    offsets.push_back(at);
    at += t.text_bytes();
  }
  return {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

inline json usage(const outcome& o) {
  return {{"prompt_tokens", o.prompt_tokens},
          {"completion_tokens", o.completion_tokens},
          {"total_tokens", o.prompt_tokens + o.completion_tokens}};
}

/// The whole response of a request that did not stream.
inline json response(const request& r, const std::string& id, const std::string& model, const outcome& o) {
  json choice = {{"index", 0}};
  const json lp = o.logprobs ? logprobs_json(r, *o.logprobs) : json(nullptr);
  if (r.chat) choice["message"] = {{"role", "assistant"}, {"content", o.text}}, choice["logprobs"] = lp;
  else choice["text"] = o.text, choice["logprobs"] = lp;
  choice["finish_reason"] = o.finish_reason;
  return {{"id", id},
          {"object", r.chat ? "chat.completion" : "text_completion"},
          {"created", now_seconds()},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", usage(o)}};
}

/// What one server-sent event carries: new text, and (when asked for) the log-probabilities of the tokens
/// generated since the previous event; every token's are sent once, the text it held back included.
struct stream_piece {
  std::string text;
  std::span<const token_logprob> logprobs = {};
  std::size_t offset = 0;  // where these tokens start in the completion (the completions form's text_offset)
};

/// One server-sent event of a streamed response: a piece, or (with `finish`) the last one.
inline std::string chunk(const request& r, const std::string& id, const std::string& model, const stream_piece& p,
                         const std::optional<std::string>& finish, bool first = false) {
  json choice = {{"index", 0}};
  const json lp = r.logprobs && !first ? logprobs_json(r, p.logprobs, p.offset) : json(nullptr);
  if (r.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!p.text.empty()) delta["content"] = p.text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = p.text;
  }
  choice["logprobs"] = lp;
  choice["finish_reason"] = finish ? json(*finish) : json(nullptr);
  const json c = {{"id", id},
                  {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
                  {"created", now_seconds()},
                  {"model", model},
                  {"choices", json::array({choice})}};
  return "data: " + c.dump() + "\n\n";
}

}  // namespace nexus::serve
