// The frozen teachers of policy distillation: every env's level is taught by one trained network,
// stepped beside the student on the same observations, with its own recurrent memory.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "agents/actor_critic.h"
#include "skills/task_batch.h"
#include "training/instruction_cache.h"

namespace skillgrid::training {

/// What the teachers do at one rollout step, one row per env.
struct TeacherOutput {
  /// (N, A) log-probabilities of each env's teacher.
  at::Tensor log_probs;
  /// (N) value estimate of each env's teacher (in its own reward scale).
  at::Tensor values;
};

/// The teachers of a distillation run, frozen (eval mode), on the student's device.
class TeacherSet {
 public:
  /// Loads each of `sources` (a run directory's newest checkpoint, or a checkpoint file) onto
  /// `device`, and gives every env (env_tasks[i]: index of its level in `levels`) the first teacher
  /// trained on that level, by level id. Throws RunError when a teacher cannot be loaded, a level
  /// has no teacher, or a teacher teaches nothing. Leaves the CPU generator's state as it found it.
  TeacherSet(const std::vector<std::string>& sources, const std::vector<std::string>& levels,
             const std::vector<int>& env_tasks, const at::Device& device);

  /// One step of every teacher on the envs' current observation (host tensors: images (N, 7, 7, 3)
  /// uint8, tokens (N, W) int32, lengths (N) int32). Each teacher's memory is first zeroed where
  /// `mask` (N, on the device) is 0 (a new episode), then advanced. Call under no-grad or
  /// inference mode.
  TeacherOutput Step(const at::Tensor& images, const at::Tensor& tokens, const at::Tensor& lengths,
                     const at::Tensor& mask);
  /// Forgets the cached instruction embeddings. Call at the start of every rollout, so that a run
  /// resumed from a checkpoint computes exactly what the uninterrupted run did.
  void ClearCaches();

  /// Number of teachers (one per source, in order).
  size_t size() const { return teachers_.size(); }
  /// Recurrent memory of teacher k, one row per env it teaches (for checkpoints).
  const at::Tensor& memory(size_t k) const { return teachers_.at(k).memory; }
  /// Restores teacher k's memory from a checkpoint; throws RunError when its shape differs.
  void set_memory(size_t k, const at::Tensor& memory);
  /// One line per teacher: its checkpoint, model, router and the levels it teaches here.
  std::vector<std::string> Describe() const;

 private:
  struct Teacher {
    std::string checkpoint;               // resolved checkpoint path
    agents::ActorCritic model{nullptr};   // frozen, eval mode
    std::vector<std::string> taught;      // short names of the levels it teaches in this run
    at::Tensor env_rows_cpu, env_rows;    // (n_k) int64 envs it teaches, host and device
    at::Tensor task_ids;                  // (n_k) int64 its own task ids of those envs, host
    skills::TaskBatch batch;              // task_ids grouped, on the device
    at::Tensor memory;                    // (n_k, memory_size) on the device
    InstructionCache instructions;        // its instruction embeddings within a rollout
  };
  std::vector<Teacher> teachers_;
  at::Device device_;
  int64_t num_envs_ = 0;
};

}  // namespace skillgrid::training
