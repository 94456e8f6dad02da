// A fixed pool of worker threads for parallel-for over a small number of chunks, with low
// hand-off latency (workers spin briefly before sleeping), for stepping batches of envs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace skillgrid::envs {

/// Runs fn(chunk) for chunk = 0..num_threads-1, the calling thread taking chunk 0.
/// Not reentrant: one ParallelFor at a time.
class ThreadPool {
 public:
  /// A pool that runs `num_threads` chunks at once (num_threads - 1 workers; 1 = no threads).
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  /// Calls fn(c) for every chunk c in [0, num_threads()) and returns when all are done.
  /// An exception thrown by fn is rethrown here (the first one).
  void ParallelFor(const std::function<void(int)>& fn);

 private:
  void WorkerLoop(int chunk);

  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> epoch_{0};     // bumped to start a job
  std::atomic<int> remaining_{0};      // workers still running the current job
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::exception_ptr error_;
  std::mutex error_mutex_;
};

}  // namespace skillgrid::envs
