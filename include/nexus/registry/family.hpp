// What the registry knows about one architecture family: how its config.json becomes a
// descriptor, and how its checkpoint tensor names map onto the canonical tensors.
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <string_view>

#include "nexus/arch/descriptor.hpp"
#include "nexus/registry/config_reader.hpp"

namespace nexus {

/// How a checkpoint tensor holds its canonical tensor(s). Fused layouts list several targets.
#define NEXUS_TENSOR_LAYOUTS(X)                                                                                       \
  X(same)                    /* identical shape and layout */                                                         \
  X(transposed)              /* GPT-2 Conv1D: stored [in, out] */                                                     \
  X(fused_rows)              /* targets stacked along dim 0 (Phi-3 qkv_proj, gate_up_proj) */                         \
  X(fused_rows_per_head)     /* per head [q_h; k_h; v_h] along dim 0 (GPT-NeoX query_key_value) */                    \
  X(fused_cols_transposed)   /* Conv1D of stacked targets: stored [in, sum(out)] (GPT-2 c_attn) */                    \
  X(rope_pairs_rows)         /* llama.cpp's Q/K permutation: each head's rows as interleaved rotation pairs (GGUF) */ \
  X(plus_one)                /* stored as 1 + w (llama.cpp's Gemma RMSNorm weights in GGUF) */                        \
  X(fused_rows_per_kv_group) /* per kv head [its query heads; k; v] along dim 0 (Falcon query_key_value) */           \
  X(experts_rows) /* every expert's targets stacked on dim 1: [experts, sum(out), in] (GraniteMoE input_linear) */
enum class tensor_layout : std::uint8_t { NEXUS_TENSOR_LAYOUTS(NEXUS_ENUM_VALUE_) };
NEXUS_ENUM_TABLE(tensor_layout, NEXUS_TENSOR_LAYOUTS);

/// One checkpoint module ("model.layers.{L}.self_attn.q_proj") and the canonical module(s) it
/// holds ("layers.{L}.attn.q"). Its ".weight" and ".bias" map to the targets' ".weight"/".bias".
/// `{E}` stands for an expert index: in both names, one checkpoint tensor per expert; in the targets
/// only, one checkpoint tensor holds every expert's (the experts_rows layout).
struct tensor_rule {
  std::string_view checkpoint;
  std::array<std::string_view, 3> targets;  // unused slots empty
  tensor_layout layout = tensor_layout::same;
  std::string_view alias = {};  // another name the same tensor has in some configurations (Falcon's ln_attn)
};

/// Tables are composed from shared fragments (many families reuse Llama's module names).
template <std::size_t... N>
constexpr auto concat(const std::array<tensor_rule, N>&... parts) {
  std::array<tensor_rule, (N + ...)> out{};
  std::size_t at = 0;
  ((std::copy(parts.begin(), parts.end(), out.begin() + std::ptrdiff_t(at)), at += N), ...);
  return out;
}

/// One GGUF metadata key ("<arch>." + gguf) and the config.json key transformers reads it into.
struct gguf_key {
  std::string_view gguf, config;
};

/// How llama.cpp writes a family into GGUF: its `general.architecture`, the metadata keys that become config
/// fields (then parsed by the family's own parse function, so config-class defaults apply as transformers
/// applies them), and llama.cpp's tensor names.
struct gguf_format {
  std::string_view arch;
  std::span<const gguf_key> keys;
  std::span<const tensor_rule> tensors;
};

/// A wrapper model (a vision-language model around a decoder) stores a table name that starts
/// with `table` under `stored` instead.
struct prefix_rename {
  std::string_view table, stored;
};

struct family {
  std::string_view model_type;  // config.json "model_type"
  descriptor (*parse)(const config_reader&);
  std::span<const tensor_rule> tensors;
  std::string_view base_prefix;  // may be missing from checkpoints saved without the LM head wrapper
  std::span<const std::string_view> ignored_suffixes;  // buffers some checkpoints carry (causal masks, inv_freq)
  // Where the table's names are stored otherwise: the first rename that applies gives the name of
  // transformers' state_dict, later ones are other spellings a checkpoint may use.
  std::span<const prefix_rename> renames = {};
  std::span<const std::string_view> ignored_prefixes = {};  // weights of parts the decoder never reads
  const gguf_format* gguf = nullptr;                        // null: llama.cpp writes no GGUF for this family
  // Sizes a config must state although the transformers class has defaults for them (JSON; the
  // expert counts): never taken from here when loading, only to describe the class's defaults.
  std::string_view class_sizes = "{}";
};

}  // namespace nexus
