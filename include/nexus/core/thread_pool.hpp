// A fixed set of worker threads for data-parallel loops. A decode step runs a few hundred short
// loops per token, so hand-off is a generation counter the workers spin on briefly before they
// sleep (std::atomic::wait), and nothing is allocated per loop. The caller takes part in every loop.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nexus/core/error.hpp"

namespace nexus {

class thread_pool {
 public:
  /// `threads` workers in all, the calling thread included; 0: one per core.
  explicit thread_pool(int threads = 0) {
    if (threads < 0) throw usage_error("threads", std::to_string(threads) + " is not a thread count (0: every core)");
    size_ = threads > 0 ? threads : std::max(1, int(std::thread::hardware_concurrency()));
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { work(); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    stop_.store(true);
    generation_.fetch_add(2);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const noexcept { return size_; }

  /// Calls body(i) for every i in [0, count), spread over the pool; returns when all are done.
  /// Iterations must be independent. Not reentrant: body must not call parallel_for on this pool.
  /// A worker that has not woken up yet is not waited for: the others (and the caller) take its
  /// share, so a loaded machine costs a little speed, not a time slice per loop.
  template <class F>
  void parallel_for(std::int64_t count, F&& body) {
    if (count <= 0) return;
    if (size_ == 1 || count == 1) {
      for (std::int64_t i = 0; i < count; ++i) body(i);
      return;
    }
    std::lock_guard<std::mutex> one_loop_at_a_time(loop_);
    job_.call = [](void* ctx, std::int64_t i) { (*static_cast<std::remove_reference_t<F>*>(ctx))(i); };
    job_.ctx = const_cast<void*>(static_cast<const void*>(&body));
    job_.count = count;
    next_.store(0);
    done_.store(0);
    const std::uint64_t open = generation_.load() + 1;  // odd: a loop is open to join
    generation_.store(open);
    generation_.notify_all();
    run_items();
    for (int spin = 0; done_.load(std::memory_order_acquire) != count; ++spin) wait_a_little(spin);
    generation_.store(open + 1);  // even: closed; late workers see it and stay out
    for (int spin = 0; inside_.load() != 0; ++spin) wait_a_little(spin);
  }

 private:
  struct job {
    void (*call)(void*, std::int64_t) = nullptr;
    void* ctx = nullptr;
    std::int64_t count = 0;
  };

  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  static void wait_a_little(int spin) {
    if (spin < 256) pause();
    else std::this_thread::yield();  // the thread we wait for may need this core
  }

  void run_items() {
    for (std::int64_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < job_.count;) {
      job_.call(job_.ctx, i);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      // Spin a little (the next loop of a decode step follows within microseconds), then sleep.
      std::uint64_t g = generation_.load(std::memory_order_acquire);
      for (int spin = 0; g == seen && spin < spin_limit; ++spin) {
        pause();
        g = generation_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        generation_.wait(seen, std::memory_order_acquire);
        continue;
      }
      seen = g;
      if (stop_.load()) return;
      if (g % 2 == 0) continue;  // closed before we got here
      inside_.fetch_add(1);
      if (generation_.load() == g) run_items();  // still open: the job is the one we were woken for
      inside_.fetch_sub(1);
    }
  }

  static constexpr int spin_limit = 1 << 13;  // about a millisecond of pause instructions
  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex loop_;
  job job_;
  std::atomic<std::int64_t> next_{0}, done_{0};
  std::atomic<int> inside_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

/// One pool per thread count for the whole process, so that several models (a teacher set) share
/// their workers instead of oversubscribing the cores.
inline std::shared_ptr<thread_pool> shared_thread_pool(int threads) {
  static std::mutex m;
  static std::map<int, std::weak_ptr<thread_pool>> pools;
  std::lock_guard<std::mutex> lock(m);
  const int n = threads > 0 ? threads : std::max(1, int(std::thread::hardware_concurrency()));
  if (auto p = pools[n].lock()) return p;
  auto p = std::make_shared<thread_pool>(n);
  pools[n] = p;
  return p;
}

}  // namespace nexus
