// A BabyAI episode: a world plus its instruction, stepped as Minigrid's RoomGridLevel does
// (world step, re-track after a drop, verify; success pays 1 - 0.9 * t / max_steps).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "envs/instr.h"
#include "envs/world.h"

namespace skillgrid::envs {

/// What one episode step returned.
struct StepResult {
  float reward = 0.0f;       ///< success reward, or the world's own (goal) reward
  bool terminated = false;   ///< success, failure, goal or lava
  bool truncated = false;    ///< step_count reached max_steps
  VerifyResult status = VerifyResult::kContinue;  ///< the instruction's verdict this step
};

/// One episode in progress. Plain value type: copying it copies the whole episode.
class Episode {
 public:
  Episode() = default;

  /// Starts from `world` and `instr` (which are copied) and resets the verifier with the start
  /// pose. max_steps is taken from the world as given.
  void Start(const WorldState& world, const Instr& instr);

  /// Applies one action (0..6) and verifies the instruction.
  StepResult Step(Action action);

  /// Writes the egocentric observation (view x view x 3 bytes) into `image`.
  void Observe(uint8_t* image) const { envs::Observe(world_, image); }

  const WorldState& world() const { return world_; }
  WorldState& mutable_world() { return world_; }
  const Instr& instr() const { return instr_; }
  /// The instruction, for generating a new episode in place: whoever writes the world and
  /// instruction directly must leave the instruction as ResetVerifier would (Level::Generate
  /// does), since Start is not called.
  Instr& mutable_instr() { return instr_; }

 private:
  WorldState world_;
  Instr instr_;
};

/// A full episode state as stored in traces: the world and its instruction tree.
struct EpisodeState {
  WorldState world;
  Instr instr;
};

/// Reads a trace's `initial` object (world + `instr`). Throws InputError or InstrError with a
/// one-line message.
EpisodeState EpisodeStateFromJson(const nlohmann::json& state);

/// Writes a world and its instruction as a trace `initial` object.
nlohmann::json EpisodeStateToJson(const WorldState& world, const Instr& instr);

}  // namespace skillgrid::envs
