// Loading a checkpoint onto a CUDA device. Link nexus::cuda (built when NEXUS_ENABLE_CUDA is on).
#pragma once

#include <filesystem>
#include <memory>

#include "nexus/backend/cuda/launch.hpp"
#include "nexus/model/model.hpp"

namespace nexus::cuda {

/// Number of CUDA devices usable now (0 when there is no driver or no GPU).
int device_count();

/// The CUDA model for instantiation I (defined in the generated kernels/instantiations TUs).
template <std::size_t I>
std::unique_ptr<model> make_model_at(descriptor n, const weight_map& w, precision p);

/// Through the instantiation list, like nexus::make_cpu_model. Throws unsupported_error for an
/// instantiation switched off in this build (CMake NEXUS_CUDA_BLOCKS).
std::unique_ptr<model> make_model(descriptor n, const weight_map& w, precision p);

/// Config, binding, fp32 unpacking, upload in `p`.
std::unique_ptr<model> load_model(const std::filesystem::path& dir, precision p);

}  // namespace nexus::cuda
