// BabyAIEnv: a level generator plus the episode it resets.
#include "envs/level.h"

#include <utility>

namespace skillgrid::envs {

BabyAIEnv::BabyAIEnv(const std::string& level_id) : BabyAIEnv(MakeLevel(level_id)) {}

BabyAIEnv::BabyAIEnv(std::unique_ptr<Level> level) : level_(std::move(level)) {}

void BabyAIEnv::Reset(uint64_t seed) {
  rng_.Seed(seed);
  Reset();
}

void BabyAIEnv::Reset() {
  // Generate leaves the instruction as ResetVerifier would: no Episode::Start copy needed.
  level_->Generate(rng_, &episode_.mutable_world(), &episode_.mutable_instr());
}

}  // namespace skillgrid::envs
