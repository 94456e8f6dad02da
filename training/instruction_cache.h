// Instruction embeddings remembered by (task, tokens): while the weights stay fixed (a rollout,
// an evaluation) each distinct mission is encoded once, not at every step.
#pragma once

#include <string>
#include <unordered_map>

#include <ATen/core/Tensor.h>

#include "agents/actor_critic.h"

namespace skillgrid::training {

/// Embeddings of the instruction GRU keyed by (task id, tokens). Clear() whenever the network's
/// weights change.
class InstructionCache {
 public:
  /// The (U, instr_dim) embeddings of the distinct instructions of `host` (the CPU observation)
  /// in its order; `obs` is the same observation on the model's device. Encodes only the
  /// instructions not seen since the last Clear().
  at::Tensor Lookup(agents::ActorCriticImpl& model, const agents::Observation& host, const agents::Observation& obs);
  /// Forgets every embedding (call after the weights change).
  void Clear() { cache_.clear(); }

 private:
  std::unordered_map<std::string, at::Tensor> cache_;
};

}  // namespace skillgrid::training
