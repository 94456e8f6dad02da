// Evaluation of a policy: N seeded episodes per level, argmax or sampled actions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agents/actor_critic.h"
#include "skills/training_helpers.h"

namespace skillgrid::training {

/// Results on one level.
struct LevelEvaluation {
  /// Level id.
  std::string level;
  /// Episodes run.
  int episodes = 0;
  /// Fraction of episodes that ended with a positive reward.
  double success_rate = 0.0;
  /// Mean unscaled episode return.
  double mean_return = 0.0;
  /// Mean episode length in steps.
  double mean_length = 0.0;
};

/// Results of an evaluation.
struct Evaluation {
  /// One entry per level, in the order given.
  std::vector<LevelEvaluation> levels;
  /// Mean of the per-level success rates.
  double success_rate = 0.0;
};

/// How levels a network did not train on are routed (zero-shot): a parsed --unseen-routing.
struct UnseenRouting {
  /// Routing of the task added for them (mean | uniform); used when as_level is empty.
  skills::UnseenTaskRouting added = skills::UnseenTaskRouting::kMean;
  /// Full id of the trained level whose task they run as ("as:LEVEL"); "" adds a task.
  std::string as_level;

  /// Parses mean | uniform | as:LEVEL, where LEVEL (short name or full id) is one of
  /// `trained_levels`. Throws ConfigError with a one-line message.
  static UnseenRouting Parse(const std::string& value, const std::vector<std::string>& trained_levels);
  /// The task id of `model` (trained on `trained_levels`, in task order) that unseen levels run
  /// as: as_level's task, or a task this call adds to every router (skills::AddUnseenTask).
  int64_t TaskIn(agents::ActorCriticImpl& model, const std::vector<std::string>& trained_levels) const;
};

/// Runs `episodes` episodes per level with the model in eval mode (restored to its previous
/// mode afterwards). Level i runs as the model's task `model_tasks[i]`; when `model_tasks` is
/// empty, `levels` must be the model's task order (task id = index). Episodes are seeded from
/// `seed` and `levels` only, so the same seed gives the same episodes whatever the model.
/// `argmax` picks the most likely action, otherwise actions are sampled.
Evaluation EvaluatePolicy(agents::ActorCritic model, const std::vector<std::string>& levels, int episodes,
                          uint64_t seed, bool argmax, int threads, const std::vector<int64_t>& model_tasks = {});

}  // namespace skillgrid::training
