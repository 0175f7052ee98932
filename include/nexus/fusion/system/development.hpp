// Development examples as the teachers read them, kept so that fitting never needs a teacher twice:
// each teacher's byte distribution at every position (single precision: what the cache stores, so a
// fit from the cache equals a fit from the teachers bit for bit), and the router's features of each
// prompt as its feature teacher read them. Saved beside a bundle (`SYSTEM.nexus.dev`, safetensors),
// a teacher added later (add_teacher.hpp) is read alone and fitted with the others' cached rows.
//
//   SYSTEM.nexus.dev: tensors "text" U8 [bytes] (the examples one after another), "prompt_bytes" and
//   "text_bytes" I64 [examples], "teacher.<i>" F32 [bytes, 257] (P(next outcome | text before), per
//   example), "router.features" F32 [examples, F] (rows of zeros where an example is not routed);
//   metadata "nexus.development": {"version": 1, "teachers": ["<sha256>", ...], "prefix_bytes": 64,
//   "feature_teacher": 0}.
#pragma once

#include <cmath>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nexus/core/error.hpp"
#include "nexus/fusion/mixtures/mixture.hpp"
#include "nexus/fusion/system/cascade.hpp"
#include "nexus/fusion/system/router.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"

namespace nexus::fusion {

/// A development example: a prompt and what should follow it (a plain document: its first bytes and the rest).
struct dev_example {
  std::string prompt, continuation;
  bool operator==(const dev_example&) const = default;
};

/// `text` as a development example: the first `prefix_bytes` bytes (cut back to a character boundary) and the rest.
inline dev_example split_document(std::string_view text, std::int64_t prefix_bytes) {
  const auto head = prompt_head(text, prefix_bytes);
  return {std::string(head), std::string(text.substr(head.size()))};
}

inline constexpr std::int64_t development_outcomes = end_of_text + 1;

/// Development examples as every teacher read them.
struct development_set {
  std::vector<dev_example> examples;         // the non-empty ones, in order
  std::vector<std::vector<float>> rows;      // [teacher][position * 257]: positions over all examples
  std::vector<std::vector<float>> features;  // [example] the router's features; empty: not routed
  std::size_t feature_teacher = 0;           // whose hidden states the features hold
  std::int64_t prefix_bytes = 64;

  std::size_t teachers() const { return rows.size(); }
  std::size_t positions() const {
    std::size_t n = 0;
    for (const auto& e : examples) n += e.prompt.size() + e.continuation.size();
    return n;
  }
  /// Teacher t's distribution at position i, widened.
  byte_distribution at(std::size_t t, std::size_t i) const {
    byte_distribution d;
    const float* r = rows[t].data() + i * std::size_t(development_outcomes);
    for (std::size_t k = 0; k < d.size(); ++k) d[k] = double(r[k]);
    return d;
  }
  /// An example routed: both a prompt and a continuation, and more than one teacher to route between.
  bool routed(std::size_t e) const {
    return teachers() > 1 && !examples[e].prompt.empty() && !examples[e].continuation.empty();
  }
};

/// Teacher distributions rounded as the development set keeps them.
inline std::vector<float> development_rows(const std::vector<byte_distribution>& dists, std::size_t positions) {
  std::vector<float> r;
  r.reserve(positions * std::size_t(development_outcomes));
  for (std::size_t i = 0; i < positions; ++i) r.insert(r.end(), dists[i].begin(), dists[i].end());
  return r;
}

/// Every position, every teacher: what the mixtures are fitted on (a document per example).
inline ensemble_data mixture_data(const development_set& dev) {
  const auto T = dev.teachers();
  ensemble_data d{std::int64_t(T), development_outcomes, {}, {}, {}};
  std::vector<double> row;
  std::size_t i = 0;
  for (const auto& e : dev.examples) {
    d.begin_document();
    for (const char ch : e.prompt + e.continuation) {
      row.clear();
      for (std::size_t t = 0; t < T; ++t) {
        const auto p = dev.at(t, i);
        row.insert(row.end(), p.begin(), p.end());
      }
      d.add(row, static_cast<unsigned char>(ch));
      ++i;
    }
  }
  return d;
}

/// Every position with the teachers in the cascade's `order`: what its thresholds are fitted on.
inline position_data cascade_data(const development_set& dev, std::span<const std::size_t> order) {
  position_data d;
  std::size_t i = 0;
  for (const auto& e : dev.examples) {
    d.starts.push_back(d.observed.size());
    for (const char ch : e.prompt + e.continuation) {
      d.dists.emplace_back();
      for (const auto t : order) d.dists.back().push_back(dev.at(t, i));
      d.observed.push_back(static_cast<unsigned char>(ch));
      ++i;
    }
  }
  return d;
}

/// The routed examples: features, and each teacher's nats per byte on the continuation.
inline std::vector<router_example> router_data(const development_set& dev) {
  std::vector<router_example> out;
  std::size_t i = 0;
  for (std::size_t e = 0; e < dev.examples.size(); ++e) {
    const auto& x = dev.examples[e];
    const auto text = x.prompt + x.continuation;
    if (dev.routed(e)) {
      router_example r{dev.features[e], std::vector<float>(dev.teachers(), 0.0f), double(x.continuation.size())};
      for (std::size_t t = 0; t < dev.teachers(); ++t) {
        double nats = 0;
        for (std::size_t k = x.prompt.size(); k < text.size(); ++k)
          nats -= std::log(
              double(dev.rows[t][(i + k) * std::size_t(development_outcomes) + static_cast<unsigned char>(text[k])]));
        r.losses[t] = float(nats / double(x.continuation.size()));
      }
      out.push_back(std::move(r));
    }
    i += text.size();
  }
  return out;
}

/// The bytes of a tensor as values of T (copied: a mapped tensor need not be aligned for T).
template <class T>
std::vector<T> copy_as(std::span<const std::byte> bytes) {
  std::vector<T> v(bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

/// Where a bundle's development cache lives: beside it.
inline std::filesystem::path development_path(const std::filesystem::path& bundle) { return bundle.string() + ".dev"; }

inline constexpr const char* development_metadata_key = "nexus.development";

/// Writes `dev` (made by the teachers of sha256 `teachers`, in bundle order) to `path`, beside and renamed.
inline void save_development(const std::filesystem::path& path, const development_set& dev,
                             const std::vector<std::string>& teachers) {
  if (teachers.size() != dev.teachers())
    throw usage_error("development",
                      std::to_string(teachers.size()) + " digests for " + std::to_string(dev.teachers()) + " teachers");
  std::string text;
  std::vector<std::int64_t> prompt_bytes, text_bytes;
  for (const auto& e : dev.examples) {
    text += e.prompt + e.continuation;
    prompt_bytes.push_back(std::int64_t(e.prompt.size()));
    text_bytes.push_back(std::int64_t(e.prompt.size() + e.continuation.size()));
  }
  std::size_t width = 0;
  for (const auto& f : dev.features) width = std::max(width, f.size());
  std::vector<float> features(dev.examples.size() * width, 0.0f);
  for (std::size_t e = 0; e < dev.features.size(); ++e)
    std::copy(dev.features[e].begin(), dev.features[e].end(), features.begin() + std::ptrdiff_t(e * width));
  const auto E = std::int64_t(dev.examples.size()), P = std::int64_t(text.size());
  std::vector<tensor_to_write> t = {
      {"text", dtype::u8, {P}, std::as_bytes(std::span(text))},
      {"prompt_bytes", dtype::i64, {E}, std::as_bytes(std::span(prompt_bytes))},
      {"text_bytes", dtype::i64, {E}, std::as_bytes(std::span(text_bytes))},
      {"router.features", dtype::f32, {E, std::int64_t(width)}, std::as_bytes(std::span(features))}};
  for (std::size_t k = 0; k < dev.teachers(); ++k)
    t.push_back(
        {"teacher." + std::to_string(k), dtype::f32, {P, development_outcomes}, std::as_bytes(std::span(dev.rows[k]))});
  const nlohmann::ordered_json meta = {{"version", 1},
                                       {"teachers", teachers},
                                       {"prefix_bytes", dev.prefix_bytes},
                                       {"feature_teacher", dev.feature_teacher}};
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  write_safetensors(tmp.string(), t, {{development_metadata_key, meta.dump()}});
  std::filesystem::rename(tmp, path);
}

/// Reads the development cache at `path`, which must have been made by the teachers of sha256
/// `teachers` (in bundle order); every shape is checked.
inline development_set read_development(const std::filesystem::path& path, const std::vector<std::string>& teachers) {
  const auto where = path.string();
  auto fail = [&](const std::string& what) -> void {
    throw bundle_error(bundle_error::code::tensor_invalid, where, what);
  };
  if (!std::filesystem::exists(path)) throw io_error(where, "no development cache (made by bundle create --fit)");
  const safetensors_file f(where);
  const auto it = f.metadata().find(development_metadata_key);
  if (it == f.metadata().end()) fail(std::string("not a development cache (no '") + development_metadata_key + "')");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    fail(std::string("its metadata is not JSON: ") + e.what());
  }
  if (!meta.is_object() || meta.value("version", 0) != 1 || !meta.contains("teachers") ||
      !meta["teachers"].is_array() || !meta.contains("prefix_bytes") || !meta["prefix_bytes"].is_number_integer() ||
      !meta.contains("feature_teacher") || !meta["feature_teacher"].is_number_unsigned())
    fail("metadata is not version 1 with teachers, prefix_bytes and feature_teacher");
  if (meta["teachers"].get<std::vector<std::string>>() != teachers)
    fail("was made by other teachers than the bundle's (their sha256 differ): fit again with bundle create --fit");
  development_set dev;
  dev.prefix_bytes = meta["prefix_bytes"].get<std::int64_t>();
  dev.feature_teacher = meta["feature_teacher"].get<std::size_t>();
  if (dev.feature_teacher >= teachers.size()) fail("feature_teacher is not one of the teachers");
  auto view = [&](const std::string& name, dtype type, std::size_t rank) {
    if (!f.contains(name)) fail("no tensor '" + name + "'");
    const auto v = f.tensor(name);
    if (v.type != type || v.shape.size() != rank) fail("tensor '" + name + "' has the wrong type or rank");
    return v;
  };
  const auto text = view("text", dtype::u8, 1), pb = view("prompt_bytes", dtype::i64, 1),
             tb = view("text_bytes", dtype::i64, 1), feats = view("router.features", dtype::f32, 2);
  const auto E = pb.shape[0];
  if (tb.shape[0] != E || feats.shape[0] != E)
    fail("prompt_bytes, text_bytes and router.features disagree on the examples");
  // Copied out: a mapped tensor need not be aligned for its type.
  const auto prompt = copy_as<std::int64_t>(pb.data), whole = copy_as<std::int64_t>(tb.data);
  const auto fv = copy_as<float>(feats.data);
  const auto* chars = reinterpret_cast<const char*>(text.data.data());
  std::int64_t at = 0;
  const auto width = std::size_t(feats.shape[1]);
  for (std::int64_t e = 0; e < E; ++e) {
    if (prompt[e] < 0 || whole[e] < prompt[e] || whole[e] == 0 || at + whole[e] > text.shape[0])
      fail("example " + std::to_string(e) + " lies outside the text");
    dev.examples.push_back({std::string(chars + at, std::size_t(prompt[e])),
                            std::string(chars + at + prompt[e], std::size_t(whole[e] - prompt[e]))});
    at += whole[e];
  }
  if (at != text.shape[0]) fail("the examples do not cover the text");
  for (std::size_t k = 0; k < teachers.size(); ++k) {
    const auto r = view("teacher." + std::to_string(k), dtype::f32, 2);
    if (r.shape[0] != text.shape[0] || r.shape[1] != development_outcomes)
      fail("tensor 'teacher." + std::to_string(k) + "' is not [text bytes, 257]");
    dev.rows.push_back(copy_as<float>(r.data));
  }
  for (std::size_t e = 0; e < dev.examples.size(); ++e)
    dev.features.push_back(dev.routed(e) ? std::vector<float>(fv.begin() + std::ptrdiff_t(e * width),
                                                              fv.begin() + std::ptrdiff_t((e + 1) * width))
                                         : std::vector<float>{});
  return dev;
}

}  // namespace nexus::fusion
