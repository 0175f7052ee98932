// The registry: config.json "model_type" (or a GGUF file's general.architecture) -> family, and from there the
// descriptor. To add a family: write registry/families/<name>.hpp and list it in `families` below.
#pragma once

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "nexus/registry/families/cohere.hpp"
#include "nexus/registry/families/cohere2.hpp"
#include "nexus/registry/families/falcon.hpp"
#include "nexus/registry/families/gemma.hpp"
#include "nexus/registry/families/gemma2.hpp"
#include "nexus/registry/families/gemma3.hpp"
#include "nexus/registry/families/gpt2.hpp"
#include "nexus/registry/families/gpt_neox.hpp"
#include "nexus/registry/families/llama.hpp"
#include "nexus/registry/families/mistral.hpp"
#include "nexus/registry/families/olmo.hpp"
#include "nexus/registry/families/olmo2.hpp"
#include "nexus/registry/families/olmo3.hpp"
#include "nexus/registry/families/phi.hpp"
#include "nexus/registry/families/phi3.hpp"
#include "nexus/registry/families/qwen2.hpp"
#include "nexus/registry/families/qwen3.hpp"
#include "nexus/registry/families/glm.hpp"
#include "nexus/registry/families/granite.hpp"
#include "nexus/registry/families/granitemoe.hpp"
#include "nexus/registry/families/helium.hpp"
#include "nexus/registry/families/mixtral.hpp"
#include "nexus/registry/families/olmoe.hpp"
#include "nexus/registry/families/qwen2_moe.hpp"
#include "nexus/registry/families/qwen3_moe.hpp"
#include "nexus/registry/families/seed_oss.hpp"
#include "nexus/registry/families/smollm3.hpp"
#include "nexus/registry/families/stablelm.hpp"
#include "nexus/registry/families/starcoder2.hpp"
#include "nexus/registry/gguf.hpp"

namespace nexus::registry {

inline constexpr std::array families{
    // the count follows the list
    &llama_family,       &mistral_family, &qwen2_family,      &qwen3_family,      &gemma_family,    &gemma2_family,
    &gemma3_text_family, &gemma3_family,  &phi_family,        &phi3_family,       &gpt2_family,     &gpt_neox_family,
    &olmo_family,        &olmo2_family,   &cohere_family,     &starcoder2_family, &stablelm_family, &granite_family,
    &smollm3_family,     &helium_family,  &seed_oss_family,   &glm_family,        &mixtral_family,  &qwen2_moe_family,
    &qwen3_moe_family,   &olmoe_family,   &granitemoe_family, &falcon_family,     &olmo3_family,    &cohere2_family,
};

inline std::string supported_model_types() {
  std::string out;
  for (const auto* f : families) out += (out.empty() ? "" : ", ") + std::string(f->model_type);
  return out;
}

/// The family of a config, or unsupported_error naming model_type and what is supported.
inline const family& find_family(const config_reader& c) {
  const auto type = c.require<std::string>("model_type");
  for (const auto* f : families)
    if (f->model_type == type) return *f;
  c.unsupported("model_type", "\"" + type + "\"", supported_model_types());
}

/// Configs saved by transformers ≥ 5 hold RoPE settings in one `rope_parameters` object
/// ({rope_type, rope_theta, partial_rotary_factor, scaling keys}); the family parsers read the
/// 4.x spelling (rope_theta, rope_scaling, partial_rotary_factor). This, the one place every config passes through,
/// rewrites the first into the second, reading it as transformers 5 does (RotaryEmbeddingConfigMixin):
/// `rope_type` wins over its legacy alias `type` (4.x Llama-like configs let `type` win), keys a rope type does not
/// use are ignored, an empty object means the defaults, and a legacy `rope_scaling` beside it replaces it
/// (`rope_scaling or rope_parameters`). The rewritten config carries `from_rope_parameters_key`, so that checks
/// only the 4.x config classes made (OLMo's and Phi-3's rope_scaling validation) are not applied to it.
/// Gemma 3's layers rotate differently by kind: transformers 5 writes one object per layer type
/// there, and for OLMo 3, which their families read themselves (parse_per_layer_type_rope); elsewhere that
/// form is refused, as
/// transformers' rotary embedding of those families cannot read it either.
inline nlohmann::json with_legacy_rope_keys(nlohmann::json config, const std::string& where) {
  if (!config.is_object() || !config.contains("rope_parameters") || config["rope_parameters"].is_null()) return config;
  const auto type =
      config.contains("model_type") && config["model_type"].is_string() ? config["model_type"].get<std::string>() : "";
  if (type == gemma3_text_family.model_type) return config;
  const bool legacy =
      config.contains("rope_scaling") && config["rope_scaling"].is_object() && !config["rope_scaling"].empty();
  const auto rp = legacy ? config["rope_scaling"] : config["rope_parameters"];
  const bool per_layer_type = is_per_layer_type_rope(rp);
  if (per_layer_type && !legacy && type == olmo3_family.model_type) return config;  // read by parse_olmo3
  if (!rp.is_object() || per_layer_type)
    throw unsupported_error(
        where, "field 'rope_parameters' = " + config["rope_parameters"].dump().substr(0, 200) +
                   " is not supported (supported: one flat object with rope_type, rope_theta and scaling keys;"
                   " one object per layer type only for gemma3_text)");
  const bool neox = type == "gpt_neox";  // its 4.x names win over rope_theta
  if (rp.contains("rope_theta")) config[neox ? "rotary_emb_base" : "rope_theta"] = rp["rope_theta"];
  if (rp.contains("partial_rotary_factor"))
    config[neox ? "rotary_pct" : "partial_rotary_factor"] = rp["partial_rotary_factor"];
  nlohmann::json scaling = rp;
  scaling.erase("rope_theta");
  scaling.erase("partial_rotary_factor");
  // rope_parameters.setdefault("rope_type", rope_parameters.get("type", "default"))
  const auto name = rp.contains("rope_type") ? rp["rope_type"] : rp.value("type", nlohmann::json("default"));
  scaling.erase("type");
  scaling["rope_type"] = name;
  if (name == "default") config["rope_scaling"] = nullptr;
  else config["rope_scaling"] = scaling;
  config.erase("rope_parameters");
  config[from_rope_parameters_key] = true;
  return config;
}

/// config.json (already parsed) -> descriptor. `where` names the source in errors.
inline descriptor describe(const nlohmann::json& raw, const std::string& where = "config.json") {
  const auto config = with_legacy_rope_keys(raw, where);
  const config_reader c(config, where);
  descriptor n = find_family(c).parse(c);
  if (n.family.empty())
    n.family = c.require<std::string>("model_type");  // a wrapper names the decoder it holds (gemma3)
  return n;
}

inline nlohmann::json read_config(const std::filesystem::path& dir_or_file) {
  const auto path = std::filesystem::is_directory(dir_or_file) ? dir_or_file / "config.json" : dir_or_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path.string(), "cannot read (is this a Hugging Face checkpoint folder?)");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw config_error(path.string(), std::string("invalid JSON: ") + e.what());
  }
}

inline bool is_gguf_path(const std::filesystem::path& p) { return p.extension() == ".gguf"; }

inline std::string supported_gguf_architectures() {
  std::string out;
  for (const auto* f : families)
    if (f->gguf && out.find(std::string(f->gguf->arch)) == std::string::npos)
      out += (out.empty() ? "" : ", ") + std::string(f->gguf->arch);
  return out;
}

/// The family of a GGUF file, from general.architecture. As transformers does, a "llama" file whose
/// general.name is exactly "mistral" is read as Mistral (llama.cpp writes Mistral models as llama).
inline const family& gguf_family(const gguf::file& f) {
  const auto arch = f.get<std::string>("general.architecture");
  const family* found = nullptr;
  for (const auto* fam : families)
    if (fam->gguf && fam->gguf->arch == arch && !found) found = fam;
  if (!found)
    throw unsupported_error(f.path(), "general.architecture = \"" + arch +
                                          "\" is not supported (supported: " + supported_gguf_architectures() + ")");
  if (arch == "llama" && f.find("general.name") && f.find("general.name")->type() == gguf::value_type::string &&
      f.get<std::string>("general.name") == "mistral")
    return mistral_family;
  return *found;
}

/// A GGUF file's metadata -> descriptor, through the config transformers would build (registry/gguf.hpp).
inline descriptor describe(const gguf::file& f) {
  const auto& fam = gguf_family(f);
  return describe(gguf_config(f, fam, fam.model_type), f.path());
}

/// A checkpoint folder's config.json, or a .gguf file's metadata -> descriptor.
inline descriptor describe(const std::filesystem::path& path) {
  if (is_gguf_path(path)) return describe(gguf::file(path));
  return describe(read_config(path), (path / "config.json").string());
}

}  // namespace nexus::registry
