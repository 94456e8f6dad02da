// Helpers of the training tests: the message of a throwing call, real first observations of
// BabyAI levels as the trainer builds them, and the config of a tiny run.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "agents/observation.h"
#include "envs/vec_env.h"
#include "training/config.h"

namespace skillgrid::training {

/// The what() of the exception `f()` throws, or "" when it throws none.
template <typename F>
std::string ErrorOf(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// The host tensors of a batch of env observations (one row per env).
struct EnvObservations {
  at::Tensor images;   ///< (N, 7, 7, 3) uint8
  at::Tensor tokens;   ///< (N, W) int32
  at::Tensor lengths;  ///< (N) int32
  at::Tensor tasks;    ///< (N) int64: env i runs levels[i % levels.size()]
  /// The rows `rows` as an Observation whose task ids are `task_id` everywhere.
  agents::Observation Rows(const std::vector<int64_t>& rows, int64_t task_id) const {
    const at::Tensor r = at::tensor(rows, at::kLong);
    return agents::MakeObservation(images.index_select(0, r), tokens.index_select(0, r), lengths.index_select(0, r),
                                   at::full({r.size(0)}, task_id, at::kLong));
  }
};

/// The first observations of `num_envs` envs cycling through `levels` (seed `seed`).
inline EnvObservations ResetObservations(const std::vector<std::string>& levels, int num_envs, uint64_t seed) {
  envs::VecEnvConfig vc;
  vc.levels = levels;
  vc.num_envs = num_envs;
  vc.seed = seed;
  envs::VecEnv env(vc);
  const int n = env.num_envs(), v = env.view_size(), w = vc.max_mission_tokens;
  EnvObservations o;
  o.images = at::zeros({n, v, v, 3}, at::kByte);
  o.tokens = at::zeros({n, w}, at::kInt);
  o.lengths = at::zeros({n}, at::kInt);
  std::vector<int32_t> dirs(n), ep_lengths(n);
  std::vector<float> rewards(n), returns(n);
  std::vector<uint8_t> terminated(n), truncated(n), success(n);
  env.Reset(envs::VecEnvBuffers{o.images.data_ptr<uint8_t>(), dirs.data(), o.tokens.data_ptr<int32_t>(),
                                o.lengths.data_ptr<int32_t>(), rewards.data(), terminated.data(), truncated.data(),
                                returns.data(), ep_lengths.data(), success.data()});
  o.tasks = at::arange(n, at::kLong).remainder(static_cast<int64_t>(levels.size()));
  return o;
}

/// A run of the small model in `dir` small enough to build in milliseconds: 3 skills of rank 2,
/// 4 envs x 4 frames per update, recurrence 4, batch 16, one thread, no progress line.
inline TrainConfig SmallRunConfig(const std::string& dir, const std::vector<std::string>& levels,
                                  const std::string& router, uint64_t seed) {
  TrainConfig c;
  c.run_dir = dir;
  c.levels = levels;
  c.model = "small";
  c.router = router;
  c.skills = 3;
  c.rank = 2;
  c.num_envs = 4;
  c.frames_per_env = 4;
  c.recurrence = 4;
  c.batch_size = 16;
  c.threads = 1;
  c.seed = seed;
  c.progress = false;
  return c;
}

}  // namespace skillgrid::training
