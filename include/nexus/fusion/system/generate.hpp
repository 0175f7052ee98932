// Generation through a fused system: with the router, by the one teacher it picks, decoding its own
// tokens (a routed teacher runs as itself: what it alone would say, at its own speed); with the
// mixture, byte by byte from every teacher at once (all resident); with the cascade, byte by byte as
// it scores (lazy_cascade.hpp: a later teacher reads only where the cascade reaches it). Streams
// valid UTF-8, each teacher's KV cache advancing only as its tokens are decided.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nexus/fusion/bytes/byte_level.hpp"
#include "nexus/fusion/system/lazy_cascade.hpp"
#include "nexus/fusion/system/parameters.hpp"
#include "nexus/generate/generate.hpp"

namespace nexus::fusion {

/// How generation combines the teachers. automatic: the router where the bundle has one, else the mixture.
enum class system_mode { automatic, mixture, cascade, router };

inline system_mode parse_system_mode(const std::string& s) {
  if (s == "auto") return system_mode::automatic;
  if (s == "mixture") return system_mode::mixture;
  if (s == "cascade") return system_mode::cascade;
  if (s == "router") return system_mode::router;
  throw usage_error("--mode", "'" + s + "' is not one of auto, mixture, cascade, router");
}

struct system_generate_options {
  std::size_t max_bytes = 256;
  std::vector<std::string> stop = {};                  // ends before the first of these (generate/stop_strings.hpp)
  std::function<void(std::string_view)> on_text = {};  // streamed complete UTF-8 characters
  system_mode mode = system_mode::automatic;
  std::function<void(std::size_t teacher)> on_route = {};  // router mode: the teacher chosen, before it generates
};

/// Greedy, byte by byte: the most likely outcome that keeps the text valid UTF-8 and that every
/// teacher read at this position can follow; end of text ends it. The mixture reads every teacher at
/// every byte (all of `used` resident); the cascade is the one that scores (lazy_cascade.hpp): its later
/// teachers read only where reached.
inline std::string generate_bytes(teacher_set& teachers, const system_parameters& p, std::span<const std::size_t> used,
                                  bool cascade, std::string_view prompt, const system_generate_options& opt) {
  const auto capacity = std::int64_t(prompt.size() + opt.max_bytes);
  std::unique_ptr<lazy_cascade> lazy;
  std::vector<std::unique_ptr<byte_level_teacher>> views;  // the mixture's
  if (cascade) {
    lazy = std::make_unique<lazy_cascade>(teachers, p, capacity);
  } else {
    byte_level_options o;
    o.capacity = capacity + 16;
    for (const auto t : used)
      views.push_back(std::make_unique<byte_level_teacher>(teachers.get(t), teachers.tok(t), o));
  }
  std::vector<byte_distribution> at(views.size());  // the mixture's teachers at this position
  auto mixture = p.mixer();
  auto read = [&] {
    for (std::size_t k = 0; k < views.size(); ++k) at[k] = views[k]->distribution();
  };
  // The next distribution, and the teachers read for it (each must be able to follow the byte chosen).
  std::vector<const byte_distribution*> read_here;
  auto next = [&]() -> byte_distribution {
    read_here.clear();
    if (lazy) {
      const auto& s = lazy->step();
      for (std::size_t k = 0; k < s.consulted; ++k) read_here.push_back(&lazy->consulted(k));
      return s.p;
    }
    for (const auto& d : at) read_here.push_back(&d);
    return mixture.mix(at);
  };
  auto push = [&](unsigned char c, std::string_view upcoming) {
    if (lazy) return lazy->push(c, upcoming);
    mixture.observe(at, c);  // `at`: the distributions c followed
    for (auto& v : views) {
      if (!upcoming.empty() && v->looked_ahead().empty())
        v->look_ahead(upcoming.substr(0, byte_level_options{}.lookahead));
      v->push(c);
    }
    read();
  };
  read();
  for (std::size_t i = 0; i < prompt.size(); ++i)  // the prompt is known: its bases run ahead together
    push(static_cast<unsigned char>(prompt[i]), prompt.substr(i));
  std::string out, pending;  // pending: bytes of a character not yet complete
  stop_scanner stops(opt.stop);
  while (out.size() + pending.size() < opt.max_bytes) {
    const auto d = next();
    std::size_t best = end_of_text;
    double best_p = d[end_of_text];
    const std::string so_far = std::string(prompt) + out + pending;
    for (std::size_t b = 0; b < end_of_text; ++b) {
      if (!(d[b] > best_p)) continue;
      bool ok = true;
      for (const auto* dk : read_here) ok = ok && (*dk)[b] > 0;
      if (ok && utf8_valid_prefix(so_far + char(b))) best = b, best_p = d[b];
    }
    if (best == end_of_text) break;
    push(static_cast<unsigned char>(best), {});
    pending += char(best);
    if (utf8::valid(pending)) {
      out += pending;
      const auto shown = stops.push(pending);
      if (opt.on_text && !shown.empty()) opt.on_text(shown);
      pending.clear();
      if (stops.stopped()) break;
    }
  }
  if (const auto rest = stops.flush(); opt.on_text && !rest.empty()) opt.on_text(rest);
  return stops.text();
}

/// Teacher `m` alone, greedy over its own tokens from the root context (as the byte-level view reads
/// a text): the text before a stop string, at most `max_bytes` (whole characters).
inline std::string generate_alone(const model& m, const tokenizer& tok, std::string_view prompt,
                                  const system_generate_options& opt) {
  auto ids = root_context(tok, m.arch().dims.vocab_size);
  const auto enc = tok.encode(prompt);
  ids.insert(ids.end(), enc.begin(), enc.end());
  generate_options g;
  g.max_new_tokens = std::int64_t(opt.max_bytes);  // a token spells at least one byte
  // stop tokens: the model's own end of generation (the default)
  g.stop_strings = opt.stop;
  const auto r = nexus::generate(m, &tok, ids, g);
  std::string out = r.text;  // cut before a stop string
  out.resize(utf8::char_start(out, std::min(out.size(), opt.max_bytes)));
  if (!utf8::valid(out)) out.resize(out.size() - utf8::incomplete_tail(out));
  if (opt.on_text && !out.empty()) opt.on_text(out);
  return out;
}

}  // namespace nexus::fusion
