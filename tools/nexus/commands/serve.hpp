// `nexus serve MODEL|SYSTEM.nexus`: the OpenAI-compatible HTTP API (serve/openai.hpp) on cpp-httplib:
// GET /health, GET /v1/models, POST /v1/completions and /v1/chat/completions (streamed as server-sent
// events with "stream": true). Requests are accepted by --parallel worker threads and generate one
// at a time, in turn (a queue, no continuous batching): a request's output is what it would be alone.
// With --api-key every /v1/ route needs "Authorization: Bearer KEY". Every bad request is a JSON error
// with its status; nothing a client sends stops the server.
#pragma once

#include <httplib.h>

#include <csignal>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "../chat_prompt.hpp"
#include "../command.hpp"
#include "../options.hpp"
#include "../serve/openai.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/generate/generate.hpp"

namespace nexus::cli {

/// What generates for the server: one model with its tokenizer (and chat template, if it has one), or
/// a fused system.
class serve_engine {
 public:
  virtual ~serve_engine() = default;
  /// Streamed text and, when the request asks for them, the log-probabilities of the tokens generated
  /// since the previous call (each token's exactly once; the outcome's logprobs hold them all).
  using on_text_fn = std::function<void(const std::string&, std::span<const serve::token_logprob>)>;
  /// Runs `r`, passing streamed text to `on_text` (which may throw to abandon the request).
  virtual serve::outcome run(const serve::request& r, const on_text_fn& on_text) = 0;
};

class model_engine : public serve_engine {
 public:
  model_engine(const std::string& path, const device_args& dev, std::int64_t context)
      : tok_(tokenizer::load(path)), model_(load_model(path, dev)), context_(context) {
    try {
      tpl_.emplace(load_chat_template(path));
    } catch (const unsupported_error&) {  // no template: /v1/chat/completions answers 400
    }
    if (context_ <= 0) context_ = model_->arch().dims.max_positions > 0 ? model_->arch().dims.max_positions : 4096;
  }

  serve::outcome run(const serve::request& r, const on_text_fn& on_text) override {
    std::vector<std::int32_t> prompt;
    if (r.chat) {
      if (!tpl_) throw serve::bad_request("this model has no chat template: use /v1/completions", "messages");
      chat::options opts;
      opts.add_generation_prompt = true;
      prompt = tok_.encode(tpl_->render(r.messages, chat::with_special_tokens(tok_, opts)), false);
    } else {
      prompt = tok_.encode(r.prompt, true);
    }
    if (prompt.empty()) throw serve::bad_request("the prompt is empty", r.chat ? "messages" : "prompt");
    if (std::int64_t(prompt.size()) + r.max_tokens > context_)
      throw serve::bad_request("the prompt's " + std::to_string(prompt.size()) + " tokens and max_tokens " +
                                   std::to_string(r.max_tokens) + " exceed the context of " + std::to_string(context_) +
                                   " tokens",
                               r.chat ? "messages" : "prompt", "context_length_exceeded");
    generate_options opt;
    opt.max_new_tokens = r.max_tokens;
    opt.sampling = {r.temperature, 0, r.top_p, r.seed};
    opt.stop_strings = r.stop;
    std::vector<serve::token_logprob> lp;
    std::size_t given = 0;  // the tokens whose log-probabilities on_text has had
    if (r.logprobs)
      opt.on_token = [&](std::int32_t id, std::span<const float> l) {
        lp.push_back(token_logprob(l, id, *r.logprobs));
      };
    opt.on_text = [&](const std::string& t) {
      on_text(t, std::span<const serve::token_logprob>(lp).subspan(given));
      given = lp.size();
    };
    const auto g = generate(*model_, &tok_, prompt, opt);
    serve::outcome o{g.text, g.reason == generate_result::stop::length ? "length" : "stop", std::int64_t(prompt.size()),
                     std::int64_t(g.tokens.size())};
    if (r.logprobs) o.logprobs = std::move(lp);
    return o;
  }

 private:
  /// A generated token's log-probability under the model (log-softmax of the logits it was chosen from,
  /// before any sampling transform) and the `top` most likely tokens there.
  serve::token_logprob token_logprob(std::span<const float> l, std::int32_t chosen, int top) const {
    const float m = *std::max_element(l.begin(), l.end());
    double z = 0;
    for (const float v : l) z += std::exp(double(v) - double(m));
    const double lse = double(m) + std::log(z);
    auto text_of = [&](std::int32_t id) { return tok_.decode(std::span(&id, 1)); };
    serve::token_logprob t{text_of(chosen), double(l[std::size_t(chosen)]) - lse, {}, !tok_.is_special(chosen)};
    std::vector<std::int32_t> ids(l.size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t(i);
    const auto n = std::min<std::size_t>(std::size_t(top), ids.size());
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(),
                      [&](auto a, auto b) { return l[std::size_t(a)] > l[std::size_t(b)]; });
    for (std::size_t i = 0; i < n; ++i) t.top.push_back({text_of(ids[i]), double(l[std::size_t(ids[i])]) - lse});
    return t;
  }

  tokenizer tok_;
  std::unique_ptr<model> model_;
  std::optional<chat::chat_template> tpl_;
  std::int64_t context_;
};

/// A fused system generates greedily, byte by byte: max_tokens counts bytes, and sampling is refused.
class bundle_engine : public serve_engine {
 public:
  bundle_engine(const std::string& path, int threads)
      : sys_(fusion::load_bundle(path, {.cpu = {.threads = threads}})) {}

  serve::outcome run(const serve::request& r, const on_text_fn& on_text) override {
    if (r.chat) throw serve::bad_request("a fused system has no chat template: use /v1/completions", "messages");
    if (r.temperature != 0)
      throw serve::bad_request("a fused system generates greedily: send temperature 0", "temperature");
    if (r.logprobs) throw serve::bad_request("a fused system has no token log-probabilities", "logprobs");
    std::size_t max_bytes = std::size_t(r.max_tokens);
    const auto out = sys_.generate(
        r.prompt,
        {.max_bytes = max_bytes, .stop = r.stop, .on_text = [&](std::string_view s) { on_text(std::string(s), {}); }});
    return {out, out.size() >= max_bytes ? "length" : "stop", std::int64_t(r.prompt.size()), std::int64_t(out.size())};
  }

 private:
  fusion::fused_system sys_;
};

struct serve_args {
  std::string model, host = "127.0.0.1", api_key, alias;
  int port = 8080, parallel = 4;
  std::int64_t context = 0, max_tokens = 4096;
  std::size_t max_body_bytes = 1 << 20;
  device_args device;
};

inline httplib::Server* running_server = nullptr;  // for the signal handler
inline void stop_server(int) {
  if (running_server) running_server->stop();
}
inline void reply_error(httplib::Response& res, const serve::api_error& e) {
  res.status = e.status;
  res.set_content(e.body().dump(), "application/json");
}

inline int serve_main(const serve_args& a) {
  const bool bundle = fs::path(a.model).extension() == ".nexus";
  std::unique_ptr<serve_engine> engine;
  if (bundle) engine = std::make_unique<bundle_engine>(a.model, a.device.threads);
  else engine = std::make_unique<model_engine>(a.model, a.device, a.context);
  const std::string id = a.alias.empty() ? fs::path(a.model).filename().string() : a.alias;
  const serve::limits lim{a.max_tokens};
  std::mutex turn;  // one generation at a time
  std::atomic<std::uint64_t> next_id{0};

  httplib::Server srv;
  const auto workers = std::size_t(a.parallel);
  srv.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  srv.set_payload_max_length(a.max_body_bytes);
  srv.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (a.api_key.empty() || !req.path.starts_with("/v1/")) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + a.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    reply_error(res, {401, "Incorrect API key provided", "invalid_request_error", "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  srv.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const auto message = res.status == 404   ? "no route " + req.method + " " + req.path
                         : res.status == 413 ? std::string("the request body is too large")
                                             : "HTTP " + std::to_string(res.status);
    reply_error(res, serve::http_error(res.status, message));
  });
  srv.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {}
    reply_error(res, serve::http_error(500, what));
  });
  srv.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  srv.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    const serve::json j = {
        {"object", "list"},
        {"data", serve::json::array(
                     {{{"id", id}, {"object", "model"}, {"created", serve::now_seconds()}, {"owned_by", "nexus"}}})}};
    res.set_content(j.dump(), "application/json");
  });
  auto handle = [&](bool chat) {
    return [&, chat](const httplib::Request& req, httplib::Response& res) {
      try {
        const auto r = serve::parse_request(req.body, chat, id, lim);
        const auto rid = std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id++);
        if (!r.stream) {
          std::lock_guard lock(turn);
          const auto o = engine->run(r, [](const std::string&, std::span<const serve::token_logprob>) {});
          res.set_content(serve::response(r, rid, id, o).dump(), "application/json");
          return;
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider("text/event-stream", [&, r, rid](std::size_t, httplib::DataSink& sink) {
          struct client_gone {};
          auto send = [&](const std::string& s) {
            if (!sink.write(s.data(), s.size())) throw client_gone{};
          };
          try {
            std::lock_guard lock(turn);
            send(serve::chunk(r, rid, id, {}, std::nullopt, true));
            std::size_t sent = 0, offset = 0;  // tokens whose log-probabilities went out, and their bytes
            const auto piece = [&](const std::string& t, std::span<const serve::token_logprob> lp) {
              send(serve::chunk(r, rid, id, {t, lp, offset}, std::nullopt));
              sent += lp.size();
              for (const auto& x : lp) offset += x.text_bytes();
            };
            const auto o = engine->run(r, piece);
            const auto rest = o.logprobs ? std::span<const serve::token_logprob>(*o.logprobs).subspan(sent)
                                         : std::span<const serve::token_logprob>{};
            send(serve::chunk(r, rid, id, {"", rest, offset}, o.finish_reason));
            send("data: [DONE]\n\n");
          } catch (const client_gone&) {
            return false;
          } catch (const serve::api_error& e) {
            const auto s = "data: " + e.body().dump() + "\n\n";
            sink.write(s.data(), s.size());
          } catch (const std::exception& e) {
            const auto s = "data: " + serve::http_error(500, e.what()).body().dump() + "\n\n";
            sink.write(s.data(), s.size());
          }
          sink.done();
          return true;
        });
      } catch (const serve::api_error& e) {
        reply_error(res, e);
      } catch (const nexus::error& e) {  // a prompt the tokenizer or template refuses
        reply_error(res, serve::bad_request(e.what()));
      }
    };
  };
  srv.Post("/v1/completions", handle(false));
  srv.Post("/v1/chat/completions", handle(true));

  const int port = a.port == 0 ? srv.bind_to_any_port(a.host) : (srv.bind_to_port(a.host, a.port) ? a.port : -1);
  if (port < 0) throw io_error(a.host + ":" + std::to_string(a.port), "cannot listen (in use, or not an address here)");
  running_server = &srv;
  std::signal(SIGINT, stop_server);
  std::signal(SIGTERM, stop_server);
  fmt::print("nexus serve: {} on http://{}:{} ({} workers, one generation at a time)\n", id, a.host, port, workers);
  std::fflush(stdout);
  srv.listen_after_bind();
  running_server = nullptr;
  return 0;
}

class serve_command : public command {
 public:
  void add(CLI::App& app) override {
    sub_ = app.add_subcommand("serve", "An OpenAI-compatible HTTP server for a model or a .nexus bundle");
    sub_->add_option("model", a_.model, "checkpoint folder, .gguf file, Hugging Face id, or .nexus bundle")
        ->required()
        ->transform(model_name);
    sub_->add_option("--host", a_.host, "address to listen on (default 127.0.0.1)");
    sub_->add_option("--port", a_.port, "port (0: any free port, printed on stdout)")->check(CLI::Range(0, 65535));
    sub_->add_option("--api-key", a_.api_key, "require 'Authorization: Bearer KEY' on /v1/ routes");
    sub_->add_option("--parallel", a_.parallel, "requests accepted at once (they generate one at a time)")
        ->check(CLI::Range(1, 1024));
    sub_->add_option("--alias", a_.alias, "the model id clients name (default: the file or folder name)");
    sub_->add_option("--context", a_.context, "most prompt + completion tokens (default: the model's context)")
        ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 24));
    sub_->add_option("--max-tokens", a_.max_tokens, "the most max_tokens a request may ask for")
        ->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 24));
    sub_->add_option("--max-body-bytes", a_.max_body_bytes, "largest request body (413 above)");
    add_device_options(*sub_, a_.device);
  }

  int run() override {
    if (fs::path(a_.model).extension() == ".nexus")
      refuse({"--device", "--precision", "--context"}, "not for a .nexus bundle (it runs on the CPU, bytes at a time)");
    return serve_main(a_);
  }

 private:
  serve_args a_;
};

}  // namespace nexus::cli
