#include "envs/thread_pool.h"

#include <chrono>

namespace skillgrid::envs {

namespace {
// How long an idle worker spins before sleeping: long enough to bridge the gap between two
// env steps of a rollout, short enough not to burn a core when the pool sits idle.
constexpr auto kSpin = std::chrono::microseconds(200);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  for (int c = 1; c < num_threads; ++c) workers_.emplace_back([this, c] { WorkerLoop(c); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    epoch_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::ParallelFor(const std::function<void(int)>& fn) {
  if (workers_.empty()) {
    fn(0);
    return;
  }
  job_ = &fn;
  error_ = nullptr;
  remaining_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    epoch_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  try {
    fn(0);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
  while (remaining_.load(std::memory_order_acquire) != 0) CpuRelax();
  job_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::WorkerLoop(int chunk) {
  uint64_t seen = 0;
  while (true) {
    // Wait for a new epoch: spin first, then sleep.
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (epoch_.load(std::memory_order_acquire) == seen &&
           std::chrono::steady_clock::now() < spin_until) {
      for (int k = 0; k < 64; ++k) CpuRelax();
    }
    if (epoch_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return epoch_.load(std::memory_order_acquire) != seen; });
    }
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    try {
      (*job_)(chunk);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    remaining_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace skillgrid::envs
