// CUDA runtime and cuBLASLt status codes as nexus errors (device_error), and device memory owned
// by one object. Host C++: no nvcc needed.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <utility>

#include "nexus/core/error.hpp"

namespace nexus::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw device_error(device_error::api::cuda, int(e), "cuda", std::string(what) + ": " + cudaGetErrorString(e));
}

inline void check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw device_error(device_error::api::cublas, int(st), "cuBLASLt",
                       std::string(what) + " failed (status " + std::to_string(int(st)) + ")");
}

/// After a kernel launch: a launch error (bad configuration, no kernel image) as a device_error.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

/// Device memory owned by one object.
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t bytes) { check(cudaMalloc(&ptr_, std::max<std::size_t>(bytes, 1)), "cudaMalloc"); }
  device_buffer(device_buffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    return *this;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() {
    if (ptr_) cudaFree(ptr_);
  }
  void* get() const noexcept { return ptr_; }
  template <class T>
  T* as() const noexcept {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

/// Page-locked host memory owned by one object (staging for uploads), grown on demand.
class pinned_buffer {
 public:
  pinned_buffer() = default;
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  ~pinned_buffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  void* reserve(std::size_t bytes) {
    if (bytes > bytes_) {
      if (ptr_) cudaFreeHost(std::exchange(ptr_, nullptr));
      bytes_ = 0;
      check(cudaMallocHost(&ptr_, bytes), "pinned staging");
      bytes_ = bytes;
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

/// A CUDA stream owned by one object.
class stream {
 public:
  stream() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "stream"); }
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  cudaStream_t get() const noexcept { return s_; }
  void sync(const char* what) const { check(cudaStreamSynchronize(s_), what); }

 private:
  cudaStream_t s_ = nullptr;
};

}  // namespace nexus::cuda
