// The one-token decode step as a CUDA graph: captured once the GEMM plans are warm, then replayed,
// reading its inputs (ids, first position, rotary frequencies) from device memory.
#pragma once

#include <cuda_runtime_api.h>

#include <utility>

#include "nexus/backend/cuda/status.hpp"

namespace nexus::cuda {

class decode_graph {
 public:
  decode_graph() = default;
  decode_graph(const decode_graph&) = delete;
  decode_graph& operator=(const decode_graph&) = delete;
  ~decode_graph() {
    if (exec_) cudaGraphExecDestroy(exec_);
  }

  /// Runs one decode step: replays the graph once captured; the first call runs `launch` plainly
  /// (it warms the GEMM plans), the second captures it.
  template <class F>
  void run(cudaStream_t s, F&& launch) {
    if (exec_) return check(cudaGraphLaunch(exec_, s), "graph launch");
    if (++calls_ < 2) return launch();
    cudaGraph_t g = nullptr;
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture");
    try {
      launch();
    } catch (...) {
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    check(cudaStreamEndCapture(s, &g), "end capture");
    const cudaError_t e = cudaGraphInstantiate(&exec_, g, 0);
    cudaGraphDestroy(g);
    check(e, "graph instantiate");
    check(cudaGraphLaunch(exec_, s), "graph launch");
  }

 private:
  cudaGraphExec_t exec_ = nullptr;
  int calls_ = 0;
};

}  // namespace nexus::cuda
