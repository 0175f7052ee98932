// Umbrella header: everything public. Prefer the one header you need; each stands alone.
#pragma once

#include "nexus/core/error.hpp"
#include "nexus/io/dtype.hpp"
#include "nexus/io/safetensors.hpp"
#include "nexus/io/safetensors_writer.hpp"
#include "nexus/io/checkpoint.hpp"
#include "nexus/reflect/reflect.hpp"
#include "nexus/arch/descriptor.hpp"
#include "nexus/arch/tensors.hpp"
#include "nexus/arch/rope.hpp"
#include "nexus/registry/registry.hpp"
#include "nexus/registry/binding.hpp"
#include "nexus/inspect/summary.hpp"
