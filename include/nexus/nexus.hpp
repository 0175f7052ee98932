// Umbrella header: everything in nexus::nexus. Prefer the one header you need; each stands alone.
// The tokenizer, chat templates, generation and fusion (nexus/tokenizer/, chat/, generate/, fusion/)
// need the nexus::tokenizer target (PCRE2, utf8proc); the CUDA backend (nexus/backend/cuda/) needs nexus::cuda.
#pragma once

#include "nexus/core/error.hpp"
#include "nexus/io/dtype.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/io/checkpoint.hpp"
#include "nexus/io/gguf.hpp"
#include "nexus/io/gguf_blocks.hpp"
#include "nexus/io/model_cache.hpp"
#include "nexus/reflect/reflect.hpp"
#include "nexus/arch/descriptor.hpp"
#include "nexus/arch/tensors.hpp"
#include "nexus/arch/rope.hpp"
#include "nexus/registry/registry.hpp"
#include "nexus/registry/binding.hpp"
#include "nexus/registry/open.hpp"
#include "nexus/inspect/architecture_table.hpp"
#include "nexus/inspect/summary.hpp"
#include "nexus/model/model.hpp"
#include "nexus/model/traits.hpp"
#include "nexus/model/parity.hpp"
#include "nexus/backend/cpu/model.hpp"
