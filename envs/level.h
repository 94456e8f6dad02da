// BabyAI levels: one generator class per level family, built by a factory from a config, and
// the single-environment wrapper that resets through generation (EnvPool's style: Reset/Step
// hooks, no window, a plain debug state for tests).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "envs/episode.h"
#include "envs/rng.h"

namespace skillgrid::envs {

/// A level generator: fills a world and its instruction for a new episode.
/// Implementations are deterministic functions of the Rng stream they are given.
class Level {
 public:
  virtual ~Level() = default;
  /// The registered id, e.g. "BabyAI-GoToLocal-v0".
  virtual const std::string& id() const = 0;
  /// Generates a fresh episode into *world and *instr (reusing their storage): grid, agent pose,
  /// mission text, instruction, max_steps (the level's rule), step_count 0, empty hands unless the
  /// level starts carrying. The instruction is left resolved for the start pose (ResetVerifier
  /// is called by the episode layer).
  virtual void Generate(Rng& rng, WorldState* world, Instr* instr) const = 0;
};

/// One registered level id and a one-line description of it.
struct LevelInfo {
  std::string id;  ///< e.g. "BabyAI-GoToLocal-v0"
  std::string
      description;  ///< one line, e.g. "go to an object in a single room with 8 distractors"
};

/// Every registered BabyAI level (96 ids, as in Minigrid 3.1), in the reference table's order.
const std::vector<LevelInfo>& AllLevels();

/// Builds the generator of a level id. Throws InputError for an unknown id, naming the closest
/// valid ids ("unknown level 'BabyAI-GoToLocl-v0'; did you mean BabyAI-GoToLocal-v0, ...?").
std::unique_ptr<Level> MakeLevel(const std::string& id);

/// A single BabyAI environment: a level generator plus an episode in progress.
class BabyAIEnv {
 public:
  /// Throws InputError for an unknown level id.
  explicit BabyAIEnv(const std::string& level_id);

  /// Starts a new episode. The same seed gives the same episode; Reset() without a seed
  /// continues the env's own stream.
  void Reset(uint64_t seed);
  void Reset();

  /// Applies one action.
  StepResult Step(Action action) { return episode_.Step(action); }
  /// Writes the egocentric observation (7x7x3 by default).
  void Observe(uint8_t* image) const { episode_.Observe(image); }

  const Episode& episode() const { return episode_; }
  const WorldState& world() const { return episode_.world(); }
  const Level& level() const { return *level_; }

 private:
  std::unique_ptr<Level> level_;
  Rng rng_;
  WorldState scratch_world_;
  Instr scratch_instr_;
  Episode episode_;
};

}  // namespace skillgrid::envs
