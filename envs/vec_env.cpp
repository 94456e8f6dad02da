#include "envs/vec_env.h"

#include <algorithm>

#include "envs/state_io.h"
#include "envs/tokenizer.h"

namespace skillgrid::envs {

VecEnv::VecEnv(const VecEnvConfig& config) : config_(config) {
  if (config_.levels.empty()) throw InputError("VecEnv: no levels given");
  if (config_.num_envs < 1) {
    throw InputError("VecEnv: num_envs must be >= 1, got " + std::to_string(config_.num_envs));
  }
  if (config_.num_threads < 1) {
    throw InputError("VecEnv: num_threads must be >= 1, got " +
                     std::to_string(config_.num_threads));
  }
  if (config_.max_mission_tokens < 1) {
    throw InputError("VecEnv: max_mission_tokens must be >= 1, got " +
                     std::to_string(config_.max_mission_tokens));
  }
  const int n = config_.num_envs;
  envs_.reserve(n);
  for (int i = 0; i < n; ++i) {
    envs_.push_back(std::make_unique<BabyAIEnv>(config_.levels[i % config_.levels.size()]));
    task_ids_.push_back(i % static_cast<int>(config_.levels.size()));
  }
  returns_.assign(n, 0.0f);
  lengths_.assign(n, 0);
  const int threads = std::min(config_.num_threads, n);
  pool_ = std::make_unique<ThreadPool>(threads);
}

void VecEnv::RunChunks(const std::function<void(int, int)>& body) {
  const int n = num_envs();
  const int chunks = pool_->num_threads();
  pool_->ParallelFor([&](int c) {
    const int begin = static_cast<int>(static_cast<int64_t>(n) * c / chunks);
    const int end = static_cast<int>(static_cast<int64_t>(n) * (c + 1) / chunks);
    body(begin, end);
  });
}

void VecEnv::WriteObservation(int i, const VecEnvBuffers& out) {
  const BabyAIEnv& e = *envs_[i];
  e.Observe(out.images + static_cast<size_t>(i) * ObservationBytes(view_size_));
  out.directions[i] = e.world().agent_dir;
}

void VecEnv::Reset(const VecEnvBuffers& out) {
  RunChunks([&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      // Env i's episodes come from stream (seed, i): independent of the thread count.
      envs_[i]->Reset(config_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(i));
      if (envs_[i]->world().agent_view_size != view_size_) {
        throw InputError("VecEnv: level " + envs_[i]->level().id() + " has a view of size " +
                         std::to_string(envs_[i]->world().agent_view_size) + ", not " +
                         std::to_string(view_size_));
      }
      returns_[i] = 0.0f;
      lengths_[i] = 0;
      WriteObservation(i, out);
      int32_t* tokens = out.mission_tokens + static_cast<size_t>(i) * config_.max_mission_tokens;
      out.mission_lengths[i] =
          MissionTokenizer::Encode(envs_[i]->world().mission, tokens, config_.max_mission_tokens);
      out.rewards[i] = 0.0f;
      out.terminated[i] = 0;
      out.truncated[i] = 0;
    }
  });
}

void VecEnv::Step(const int32_t* actions, const VecEnvBuffers& out) {
  for (int i = 0; i < num_envs(); ++i) {
    if (actions[i] < 0 || actions[i] >= kNumActions) {
      throw InputError("VecEnv::Step: action " + std::to_string(actions[i]) + " of env " +
                       std::to_string(i) + " is outside 0..6");
    }
  }
  RunChunks([&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      BabyAIEnv& e = *envs_[i];
      const StepResult r = e.Step(static_cast<Action>(actions[i]));
      returns_[i] += r.reward;
      lengths_[i] += 1;
      out.rewards[i] = r.reward;
      out.terminated[i] = r.terminated;
      out.truncated[i] = r.truncated;
      if (r.terminated || r.truncated) {
        out.episode_returns[i] = returns_[i];
        out.episode_lengths[i] = lengths_[i];
        out.episode_success[i] = returns_[i] > 0.0f;
        returns_[i] = 0.0f;
        lengths_[i] = 0;
        e.Reset();
        int32_t* tokens =
            out.mission_tokens + static_cast<size_t>(i) * config_.max_mission_tokens;
        out.mission_lengths[i] =
            MissionTokenizer::Encode(e.world().mission, tokens, config_.max_mission_tokens);
      }
      WriteObservation(i, out);
    }
  });
}

}  // namespace skillgrid::envs
