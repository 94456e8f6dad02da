// Live episodes for the viewer and the exports: one slot per task, each with its own episode,
// driven by an Actor (a trained policy, the expert bot, random actions) or by manual play.
// Episodes come from the level generators (seeded) or from fixed start states (a state JSON or
// a conformance trace file), which makes fixtures exact.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envs/episode.h"
#include "envs/level.h"
#include "envs/rng.h"
#include "envs/world.h"

namespace skillgrid::viz {

/// Chooses actions for the episodes of a Session. Slots are independent (a recurrent policy
/// keeps one memory per slot).
class Actor {
 public:
  virtual ~Actor() = default;
  /// Short description for the status line, e.g. "policy ckpt_000120.pt" or "bot".
  virtual std::string name() const = 0;
  /// Called when slot `slot` (task `task`) starts an episode.
  virtual void BeginEpisode(int slot, int task, const envs::Episode& episode) = 0;
  /// The next action for the slot; `sample` draws from the policy instead of taking its argmax.
  virtual envs::Action Act(int slot, int task, const envs::Episode& episode, bool sample) = 0;
  /// Called after each step of the slot with the action really applied (it differs from Act's
  /// in manual play, where Act is not called at all).
  virtual void Applied(int slot, envs::Action action) {}
  /// Skills this actor's policy actually used in the slot's last step for a layer and head, if
  /// it can tell (AdaMix draws, hard routing); empty optional = use the routing matrix.
  virtual std::optional<std::vector<int>> FiredSkills(int slot, const std::string& layer,
                                                      int head) const {
    return std::nullopt;
  }
};

/// Uniformly random actions 0..6 (the movement and object actions; never `done`), seeded.
std::unique_ptr<Actor> MakeRandomActor(uint64_t seed);

/// The expert bot (envs/bot.h), one per slot.
std::unique_ptr<Actor> MakeBotActor();

/// Which episodes a Session runs.
struct SessionConfig {
  std::vector<std::string> levels;  ///< one slot per level id
  /// Task id of each slot (its routing-matrix row and the policy's task input); empty = the
  /// slot index.
  std::vector<int> tasks;
  uint64_t seed = 0;                ///< episode k of slot i uses seed + k * levels.size() + i
  /// Fixed start states per slot (same order as levels); a non-empty list replaces the level's
  /// generator for that slot and is cycled through. May be shorter than levels.
  std::vector<std::vector<envs::EpisodeState>> fixed_starts;
};

/// One slot: a task and its episode in progress with running statistics.
struct TaskSlot {
  std::string level;            ///< level id
  int task = 0;                 ///< task index (routing-matrix row)
  envs::Episode episode;        ///< the episode in progress
  int episodes = 0;             ///< episodes finished
  int successes = 0;            ///< finished with a positive reward
  float last_reward = 0.0f;     ///< reward of the last step
  float episode_return = 0.0f;  ///< return so far in this episode
  bool done = false;            ///< the episode ended; the next step starts a new one
  bool last_success = false;    ///< the last finished episode succeeded
  std::string last_action;      ///< name of the last action ("" at the start)
  uint64_t episode_seed = 0;    ///< seed of the current episode (generated levels)
};

/// The slots of a viewer or an export.
class Session {
 public:
  /// Builds one slot per level and starts their first episodes. Throws envs::InputError for an
  /// unknown level (one line).
  Session(const SessionConfig& config, std::unique_ptr<Actor> actor);

  /// Number of slots (tasks).
  int num_slots() const { return static_cast<int>(slots_.size()); }
  /// Slot i.
  const TaskSlot& slot(int i) const { return slots_[i]; }
  /// The actor (may be null: manual play only).
  Actor* actor() const { return actor_.get(); }
  /// Replaces the actor (e.g. after a newer checkpoint appeared); episodes continue.
  void SetActor(std::unique_ptr<Actor> actor);

  /// Advances slot i one step with the actor's action (or starts the next episode if the
  /// current one is done). Without an actor only a done episode is restarted.
  void Step(int i, bool sample);
  /// Applies `action` to slot i (manual play); starts the next episode first if done.
  void StepManual(int i, envs::Action action);
  /// Abandons slot i's episode and starts the next one.
  void Restart(int i);

 private:
  void StartEpisode(int i);
  void Apply(int i, envs::Action action);

  SessionConfig config_;
  std::unique_ptr<Actor> actor_;
  std::vector<TaskSlot> slots_;
  std::vector<std::unique_ptr<envs::BabyAIEnv>> envs_;  // null for fixed-start slots
  std::vector<int> next_start_;                          // per slot: next fixed start / episode k
};

/// A start state read from a file, with the level it came from ("" when the file does not say).
struct StartState {
  std::string level;         ///< level id of the trace line, or ""
  envs::EpisodeState state;  ///< world and instruction
};

/// Reads start states from a file: a state JSON object (a trace's `initial`, or a whole trace
/// line), or a JSON Lines conformance trace file (every line's `initial`). Throws
/// std::runtime_error with a one-line message naming the file.
std::vector<StartState> LoadStartStates(const std::string& path);

}  // namespace skillgrid::viz
