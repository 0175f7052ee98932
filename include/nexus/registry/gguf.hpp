// GGUF metadata -> the config.json transformers builds from it (modeling_gguf_pytorch_utils.load_gguf_checkpoint),
// so that a family's own parse function turns it into a descriptor with the config class's defaults. What
// each family reads is its gguf_format (families/<name>.hpp); this file holds what all of them share.
#pragma once

#include <charconv>
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "nexus/io/gguf.hpp"
#include "nexus/registry/family.hpp"

namespace nexus::registry {

/// A float written by a converter from a Python float: the shortest decimal that reads back as the same float
/// (1e-05, not 9.999999747378752e-06), so that descriptors from GGUF and config.json compare equal. Compute is
/// unaffected: both round to the same float.
inline double shortest_double(float f) {
  if (!std::isfinite(f)) return double(f);
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

/// One metadata value as JSON, the way transformers' _gguf_parse_value reads a scalar.
inline nlohmann::json gguf_json(const gguf::file& f, std::string_view key, const gguf::value& v) {
  using t = gguf::value_type;
  switch (v.type()) {
    case t::u8:
    case t::i8:
    case t::u16:
    case t::i16:
    case t::u32:
    case t::i32:
    case t::i64: return v.as<std::int64_t>();
    case t::u64: return v.as<std::uint64_t>();
    case t::f32: return shortest_double(v.as<float>());
    case t::f64: return v.as<double>();
    case t::boolean: return v.as<bool>();
    case t::string: return v.as<std::string>();
    case t::array: break;
  }
  throw unsupported_error(
      f.path(), "metadata key '" + std::string(key) + "' holds an array (per-layer values are not supported)");
}

/// The keys llama.cpp's loader requires of every architecture it loads (llama_model_loader: n_ctx_train,
/// n_embd, n_layer, n_ff, n_head); a file without them is not a usable model.
inline constexpr std::string_view gguf_required_keys[] = {"context_length", "embedding_length", "block_count",
                                                          "feed_forward_length", "attention.head_count"};

/// RoPE scaling as llama.cpp reads it (transformers maps none of these keys; it would run such a file unscaled).
inline void gguf_rope_scaling(const gguf::file& f, const std::string& arch, nlohmann::json& config) {
  const auto key = [&](std::string_view k) { return arch + ".rope.scaling." + std::string(k); };
  const auto* type = f.find(key("type"));
  if (!type) return;
  const auto name = type->as<std::string>();
  if (name == "none") return;
  nlohmann::json rs;
  if (name == "linear") {
    rs = {{"type", "linear"}, {"factor", shortest_double(f.get<float>(key("factor")))}};
  } else if (name == "yarn") {
    rs = {{"type", "yarn"},
          {"factor", shortest_double(f.get<float>(key("factor")))},
          {"original_max_position_embeddings", f.get<std::int64_t>(key("original_context_length"))}};
    if (const auto* v = f.find(key("yarn_beta_fast"))) rs["beta_fast"] = shortest_double(v->as<float>());
    if (const auto* v = f.find(key("yarn_beta_slow"))) rs["beta_slow"] = shortest_double(v->as<float>());
    if (const auto* v = f.find(key("yarn_attn_factor"))) rs["attention_factor"] = shortest_double(v->as<float>());
  } else {
    throw unsupported_error(f.path(), "metadata key '" + key("type") + "' = \"" + name +
                                          "\" is not supported (supported: none, linear, yarn)");
  }
  config["rope_scaling"] = rs;
}

/// Tensors llama.cpp writes to carry RoPE factors: without them in the descriptor the model would be silently
/// wrong, so they are refused.
inline void gguf_refuse_rope_factor_tensors(const gguf::file& f) {
  for (const char* name : {"rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"})
    if (f.tensor(name))
      throw unsupported_error(f.path(),
                              std::string("tensor '") + name +
                                  "' (per-dimension RoPE factors: llama3 or longrope scaling) is not supported");
}

/// config.json as transformers builds it from a GGUF file of family `fam` (model_type `model_type`).
inline nlohmann::json gguf_config(const gguf::file& f, const family& fam, std::string_view model_type) {
  const std::string arch(fam.gguf->arch);
  for (auto k : gguf_required_keys)
    if (!f.find(arch + "." + std::string(k)))
      throw config_error(f.path(), "metadata key '" + arch + "." + std::string(k) + "' is required");
  nlohmann::json config = nlohmann::json::object();
  config["model_type"] = std::string(model_type);
  // `tie_word_embeddings = all("output.weight" != tensor.name ...)`
  config["tie_word_embeddings"] = f.tensor("output.weight") == nullptr;
  for (const auto& k : fam.gguf->keys) {
    const auto key = arch + "." + std::string(k.gguf);
    if (const auto* v = f.find(key)) config[std::string(k.config)] = gguf_json(f, key, *v);
  }
  // transformers: vocab_size from the token list when the metadata has none (issue 32526)
  if (!config.contains("vocab_size"))
    if (const auto* tokens = f.find("tokenizer.ggml.tokens")) config["vocab_size"] = tokens->size();
  gguf_rope_scaling(f, arch, config);
  gguf_refuse_rope_factor_tensors(f);
  return config;
}

}  // namespace nexus::registry
