// The PPO / A2C trainer: multitask rollouts on a VecEnv, BPTT updates of a recurrent
// actor-critic, the run directory (config.json, log.csv, eval.csv, checkpoints, skills.json)
// and exact resumption.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

#include "agents/actor_critic.h"
#include "skills/task_batch.h"
#include "training/config.h"
#include "training/phase_profile.h"

namespace skillgrid::training {

/// Training cannot go on (a NaN loss, ...). The run directory keeps its last good checkpoint.
class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What one update did (one row of log.csv).
struct UpdateStats {
  /// Updates done so far (1 after the first).
  int64_t update = 0;
  /// Environment frames so far.
  int64_t frames = 0;
  /// Episodes finished so far (all levels).
  int64_t episodes = 0;
  /// Wall-clock seconds of training so far (across resumptions).
  double duration_s = 0.0;
  /// Frames per second of this update.
  double fps = 0.0;
  /// Seconds spent collecting the rollout and optimising in this update.
  double rollout_s = 0.0, optimise_s = 0.0;
  /// Rolling success rate per level (NaN before its first episode), level order.
  std::vector<double> success;
  /// Rolling mean unscaled return per level (NaN before its first episode).
  std::vector<double> returns;
  /// Episodes finished per level so far.
  std::vector<int64_t> level_episodes;
  /// Mean of the per-level rolling success rates (levels without episodes count as 0).
  double mean_success = 0.0;
  /// Mean over minibatches of the loss parts.
  double policy_loss = 0.0, value_loss = 0.0, entropy = 0.0;
  /// Mean predicted value, approximate KL, clip fraction and pre-clip gradient norm.
  double value_mean = 0.0, approx_kl = 0.0, clip_fraction = 0.0, grad_norm = 0.0;
  /// Distillation (NaN without teachers): the weight used in this update, and the mean
  /// tau^2 * KL(teacher || student) over its minibatch rows, overall and per level.
  double distill_coef = std::nan(""), distill_kl = std::nan("");
  /// Per-level distillation KL, level order (empty without teachers).
  std::vector<double> level_kl;
};

/// Called after every update (progress display, tests).
using UpdateCallback = std::function<void(const UpdateStats&)>;

/// Why Trainer::Train returned (kNone before it has, and while it runs updates that go on).
enum class StopReason { kNone, kFrames, kTimeBudget, kStopFlag };

/// Trains one run. Construction validates the config, prepares the run directory and either
/// starts fresh (the directory must not hold checkpoints) or resumes from its last checkpoint.
class Trainer {
 public:
  /// Throws ConfigError for a bad config and RunError for an unusable run directory (existing run
  /// without `resume`, no checkpoint or another architecture with `resume`).
  Trainer(const TrainConfig& config, bool resume);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// Runs updates until config().frames or, with config().max_minutes, until an update ends past
  /// that budget, or until the stop flag (SetStopFlag) is raised; checkpoints every save_interval
  /// updates and at the end, evaluates every eval_interval updates. Throws TrainingError on a NaN
  /// loss (after which the directory holds the last good checkpoint and logs up to it).
  void Train(const UpdateCallback& on_update = {});
  /// A flag Train reads after every update: once it is true, Train checkpoints that update and
  /// returns (a signal handler may set it: a lock-free atomic store is async-signal-safe).
  /// nullptr (the default) never stops.
  void SetStopFlag(const std::atomic<bool>* stop);
  /// Why the last Train returned, set before its last on_update call (kNone before then).
  StopReason stop_reason() const;
  /// One update: rollout of frames_per_update frames, then the optimisation. Logged to log.csv.
  UpdateStats Step();
  /// Writes a checkpoint of the current state (and a skills.json snapshot).
  void SaveCheckpoint();
  /// Runs the periodic evaluation now and appends it to eval.csv; returns the mean success.
  double EvaluateNow();

  /// The resolved configuration.
  const TrainConfig& config() const;
  /// The network.
  agents::ActorCritic model() const;
  /// Updates done.
  int64_t updates() const;
  /// Frames collected.
  int64_t frames() const;
  /// Stats of the last update (zeros before the first).
  const UpdateStats& last_stats() const;
  /// Starts timing the phases of later updates (rollout, update parts; see PhaseProfile), which
  /// synchronises a GPU at each phase boundary; returns the profile the trainer fills.
  PhaseProfile& EnablePhaseProfile();
  /// Wall-clock seconds of training so far, earlier sessions of a resumed run included.
  double ElapsedSeconds() const;
  /// Whether config().max_minutes is set and ElapsedSeconds() has reached it.
  bool TimeBudgetSpent() const;
  /// One line per distillation teacher: its checkpoint, model and the levels it teaches (empty
  /// without teachers).
  std::vector<std::string> TeacherDescriptions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The optimiser of a run: Adam (or RMSprop) with two parameter groups, the network at
/// config.lr and the learned routing logits at config.router_lr (the two-speed rate; the second
/// group exists only when the model has learned routers). With config.train_only_routing the
/// routing logits are the only group (MHR-z adaptation).
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(agents::ActorCriticImpl& model, const TrainConfig& config);

/// BPTT over chunks: gates (C, R, 4*memory_dim) precomputed input projections, memory (C, M) the
/// memory at each chunk start (already masked), masks (C, R) with 0 where a new episode starts
/// at that step (the memory carried into it is zeroed, so no gradient crosses the boundary).
/// Returns the memory after every step, (C * R, M), chunk-major.
at::Tensor UnrollMemory(agents::ActorCriticImpl& model, const at::Tensor& gates, at::Tensor memory,
                        const at::Tensor& masks, const skills::TaskBatch& step_batch);

/// A one-line progress display: frames, fps, ETA (to the frame budget, or to the time budget
/// when that comes first), mean success and per-level success.
std::string ProgressLine(const TrainConfig& config, const UpdateStats& stats);

}  // namespace skillgrid::training
