#include "envs/episode.h"

#include <nlohmann/json.hpp>

#include "envs/state_io.h"

namespace skillgrid::envs {

void Episode::Start(const WorldState& world, const Instr& instr) {
  world_ = world;
  instr_ = instr;
  ResetVerifier(instr_, world_);
}

StepResult Episode::Step(Action action) {
  const StepOutcome base = StepWorld(world_, action);
  StepResult r;
  r.reward = base.reward;
  r.terminated = base.terminated;
  r.truncated = base.truncated;
  r.status = Verify(instr_, world_, action);
  if (r.status == VerifyResult::kSuccess) {
    r.terminated = true;
    r.reward = SuccessReward(world_);
  } else if (r.status == VerifyResult::kFailure) {
    r.terminated = true;
    r.reward = 0.0f;
  }
  return r;
}

EpisodeState EpisodeStateFromJson(const nlohmann::json& state) {
  EpisodeState s;
  s.world = WorldFromJson(state);
  auto it = state.find("instr");
  if (it == state.end()) throw InputError("state: missing field 'instr'");
  s.instr = InstrFromJson(*it);
  return s;
}

nlohmann::json EpisodeStateToJson(const WorldState& world, const Instr& instr) {
  nlohmann::json j = WorldToJson(world);
  j["instr"] = InstrToJson(instr);
  return j;
}

}  // namespace skillgrid::envs
