// Batched BabyAI environments of mixed levels, stepped by a fixed thread pool, writing into
// contiguous caller buffers (ready to wrap as tensors without copies).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "envs/level.h"
#include "envs/thread_pool.h"

namespace skillgrid::envs {

/// Configuration of a VecEnv.
struct VecEnvConfig {
  /// Level ids; env i runs level i % levels.size() and its task id is that index.
  std::vector<std::string> levels = {"BabyAI-GoToLocal-v0"};
  int num_envs = 16;   ///< environments in the batch; >= 1
  int num_threads = 1;  ///< threads stepping them (the caller's included); >= 1
  uint64_t seed = 0;    ///< base seed: env i draws its episodes from its own stream (seed, i)
  int max_mission_tokens = 64;  ///< width of the mission-token buffer per env
};

/// Caller-owned output buffers, each with one row per env (N = num_envs, V = view size).
/// Every pointer must be valid for its size. Pass the same buffers to Reset and every Step:
/// mission tokens are rewritten only when an env starts an episode, and episode_* entries only
/// where an episode ended this step (terminated or truncated).
struct VecEnvBuffers {
  uint8_t* images = nullptr;           ///< N * V * V * 3, Minigrid's [i][j][c] order
  int32_t* directions = nullptr;       ///< N
  int32_t* mission_tokens = nullptr;   ///< N * max_mission_tokens, padded with 0
  int32_t* mission_lengths = nullptr;  ///< N
  float* rewards = nullptr;            ///< N
  uint8_t* terminated = nullptr;       ///< N
  uint8_t* truncated = nullptr;        ///< N
  float* episode_returns = nullptr;    ///< N: return of the episode that just ended
  int32_t* episode_lengths = nullptr;  ///< N: its length in steps
  uint8_t* episode_success = nullptr;  ///< N: 1 if it ended with a positive reward
};

/// N BabyAI environments with automatic reset: when an episode ends, the env starts the next
/// one at once and the observation written for that step is the new episode's first.
/// Results are identical whatever the thread count (each env owns its random stream).
class VecEnv {
 public:
  /// Throws InputError for unknown levels or bad sizes.
  explicit VecEnv(const VecEnvConfig& config);

  int num_envs() const { return static_cast<int>(envs_.size()); }
  int num_tasks() const { return static_cast<int>(config_.levels.size()); }
  int view_size() const { return view_size_; }
  const VecEnvConfig& config() const { return config_; }
  /// Task id (index into config().levels) of env i.
  int task_of(int env) const { return env % num_tasks(); }
  /// Task ids of all envs (N values), for the policy's routers.
  const std::vector<int32_t>& task_ids() const { return task_ids_; }

  /// Starts a fresh episode in every env and writes the first observations (images,
  /// directions, mission tokens); rewards and flags are zeroed.
  void Reset(const VecEnvBuffers& out);
  /// Steps every env with actions[i] in 0..6 (throws InputError otherwise) and writes results.
  void Step(const int32_t* actions, const VecEnvBuffers& out);

  /// The env itself, for inspection (rendering, the bot).
  const BabyAIEnv& env(int i) const { return *envs_[i]; }

 private:
  void WriteObservation(int i, const VecEnvBuffers& out);
  void RunChunks(const std::function<void(int, int)>& body);

  VecEnvConfig config_;
  int view_size_ = 7;  // every BabyAI level uses Minigrid's default 7x7 view
  std::vector<std::unique_ptr<BabyAIEnv>> envs_;
  std::vector<int32_t> task_ids_;
  std::vector<float> returns_;    // running return per env
  std::vector<int32_t> lengths_;  // running length per env
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace skillgrid::envs
