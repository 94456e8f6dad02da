// Recurrent actor-critic agents for BabyAI: bow_endpool_res (BabyAI 1.1), expert_filmcnn
// (BabyAI 1.0) and a small fast preset, with the task id as input to skill-routed layers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include "agents/layers.h"
#include "agents/observation.h"
#include "skills/task_batch.h"

namespace skillgrid::agents {

/// Number of BabyAI actions (left, right, forward, pickup, drop, toggle, done).
inline constexpr int64_t kNumActions = 7;

/// Architecture of an actor-critic (stored in checkpoints; a checkpoint only loads into the
/// same architecture).
struct ModelOptions {
  /// Preset architecture: bow_endpool_res | expert_filmcnn | small.
  explicit ModelOptions(std::string arch = "bow_endpool_res");

  /// Architecture name: bow_endpool_res (BabyAI 1.1), expert_filmcnn (BabyAI 1.0), small.
  TORCH_ARG(std::string, arch);
  /// Image embedding / FiLM channels (128 in BabyAI; the small preset's CNN gives 64).
  TORCH_ARG(int64_t, image_dim) = 128;
  /// Instruction GRU size (128 in both BabyAI models and the small preset).
  TORCH_ARG(int64_t, instr_dim) = 128;
  /// Word embedding size (128 in BabyAI, 32 in the small preset).
  TORCH_ARG(int64_t, word_dim) = 128;
  /// LSTM hidden size; the stored memory is concat(h, c), twice this (128 in BabyAI, 64 small).
  TORCH_ARG(int64_t, memory_dim) = 128;
  /// Hidden width of the actor and critic MLPs (64 everywhere).
  TORCH_ARG(int64_t, head_dim) = 64;
  /// Vocabulary size including padding id 0 (the tokenizer's 33).
  TORCH_ARG(int64_t, vocab_size) = 33;
  /// Skill routing of the layer families.
  TORCH_ARG(RoutingOptions, routing) = RoutingOptions();

 public:
  /// Checks the values; throws std::invalid_argument with a one-line message.
  void Validate() const;
  /// Full JSON description (architecture, routing, vocabulary words).
  nlohmann::json ToJson() const;
  /// Inverse of ToJson.
  static ModelOptions FromJson(const nlohmann::json& j);
};

/// The architecture names accepted by ModelOptions.
const std::vector<std::string>& ModelArchitectures();

/// Per-row features of a batch before the memory: the image-and-instruction features fed to the
/// LSTM, and (small preset) the instruction embedding concatenated after the memory.
struct Encoded {
  /// (B, image_dim) input of the memory cell.
  at::Tensor features;
  /// (B, instr_dim) instruction embedding read by the heads (small preset), else undefined.
  at::Tensor head_extra;
};

/// Outputs of the heads.
struct PolicyOutput {
  /// (B, 7) action log-probabilities.
  at::Tensor log_probs;
  /// (B) state values.
  at::Tensor values;
  /// (B, memory_size) new memory (set by Act; undefined from Heads).
  at::Tensor memory;
};

/// A recurrent actor-critic. One step is Encode -> StepMemory -> Heads; training with BPTT
/// encodes all rows of a minibatch at once and runs only the memory step by step.
class ActorCriticImpl : public torch::nn::Cloneable<ActorCriticImpl> {
 public:
  /// Builds the network; throws std::invalid_argument for bad options.
  explicit ActorCriticImpl(ModelOptions options);
  /// (Re)creates every layer with BabyAI's initialisation.
  void reset() override;

  /// Size of the recurrent state per env: 2 * memory_dim (h and c).
  int64_t memory_size() const { return 2 * options.memory_dim(); }

  /// Image and instruction trunk for a batch of observations (rows grouped by `batch`).
  /// `instr_unique` may supply the embeddings of obs's distinct instructions (U, instr_dim), in
  /// obs.instr_tokens order, e.g. from EncodeInstructions earlier in a rollout.
  Encoded Encode(const Observation& obs, const skills::TaskBatch& batch, const at::Tensor& instr_unique = {});
  /// Embeddings (U, instr_dim) of the distinct instructions of `obs` (the GRU encoder).
  at::Tensor EncodeInstructions(const Observation& obs);
  /// Input projection of the memory cell for all rows at once (B, 4 * memory_dim).
  at::Tensor MemoryGates(const Encoded& enc, const skills::TaskBatch& batch);
  /// One memory step from precomputed gates (B, 4*memory_dim) and memory (B, memory_size).
  at::Tensor StepMemory(const at::Tensor& gates, const at::Tensor& memory, const skills::TaskBatch& batch);
  /// The memory over whole sequences (BPTT): gates (N, R, 4*memory_dim) from MemoryGates, start
  /// memory (N, memory_size), resets (N, R) (0 where an episode starts before step k > 0) and the
  /// task of each sequence -> memories after each step (N, R, memory_size); one routing draw.
  at::Tensor UnrollMemory(const at::Tensor& gates, const at::Tensor& memory, const at::Tensor& resets,
                          const skills::TaskBatch& sequence_batch);
  /// Actor and critic on the memory (B, memory_size) and the encoding of the same rows.
  PolicyOutput Heads(const Encoded& enc, const at::Tensor& memory, const skills::TaskBatch& batch);
  /// One full step: encode, update memory, heads. Returns log-probs, values and the new memory.
  /// Without autograd on CPU (rollouts, evaluation) the memory and heads run as one fused host
  /// pass (see ActComposite); the routing draws and results are the same up to rounding.
  PolicyOutput Act(const Observation& obs, const at::Tensor& memory, const skills::TaskBatch& batch,
                   const at::Tensor& instr_unique = {});
  /// Act as Encode -> MemoryGates -> StepMemory -> Heads, one ATen op at a time (the path that
  /// autograd, CUDA and the layers without a host form take).
  PolicyOutput ActComposite(const Observation& obs, const at::Tensor& memory, const skills::TaskBatch& batch,
                            const at::Tensor& instr_unique = {});
  /// Whether Act would take its fused host path for this memory in the current grad mode.
  bool ActIsFused(const at::Tensor& memory);

  /// Routing logits of every learned router (the fast group of the two-speed learning rate).
  std::vector<at::Tensor> RouterParameters() const;
  /// Every other trainable parameter.
  std::vector<at::Tensor> NetworkParameters() const;
  /// Number of trainable scalars.
  int64_t NumParameters() const;
  /// Eval-mode routing weights of every routed layer, {"layer name": [[T x S]...]} (heads averaged).
  nlohmann::json RoutingSnapshot() const;
  /// Sets the arithmetic of the image convolutions (bow_endpool_res, expert_filmcnn; the small
  /// model's fused trunk stays fp32). Not part of the architecture: checkpoints load either way.
  void SetConvPrecision(skills::ConvPrecision precision);
  /// The arithmetic of the image convolutions (fp32 unless SetConvPrecision changed it).
  skills::ConvPrecision ConvPrecision() const;

  /// The options the network was built with.
  ModelOptions options;

 private:
  at::Tensor ImageTrunk(const Observation& obs, const at::Tensor& instr_rows, const skills::TaskBatch& batch);
  // Act's fused host path (actor_critic_fused.cpp): the trunk as Encode, then the memory step and
  // both heads on raw buffers with one routing draw per layer, in ActComposite's order.
  PolicyOutput ActFused(const Observation& obs, const at::Tensor& memory, const skills::TaskBatch& batch,
                        const at::Tensor& instr_unique);
  // bow_endpool_res's trunk on CPU in bf16 precision (fused kernels of trunk_kernels.h).
  at::Tensor BowTrunkBf16(const Observation& obs, const at::Tensor& instr_rows, const skills::TaskBatch& batch);

  // bow_endpool_res / expert_filmcnn
  torch::nn::Embedding bow_{nullptr};
  RoutedConv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  struct Film {
    RoutedConv2d conv1{nullptr}, conv2{nullptr};
    torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    RoutedLinear gamma{nullptr}, beta{nullptr};
  };
  std::vector<Film> films_;
  // small
  RoutedConv2d sconv1_{nullptr}, sconv2_{nullptr}, sconv3_{nullptr};
  // shared parts
  InstructionEncoder instr_{nullptr};
  LstmCell memory_{nullptr};
  RoutedLinear actor1_{nullptr}, actor2_{nullptr}, critic1_{nullptr}, critic2_{nullptr};
};
/// Module holder for ActorCriticImpl.
TORCH_MODULE(ActorCritic);

/// One action per row drawn from the policy exp(log_probs) (N, A) with torch's default
/// generator: one uniform per row, inverted through the row's cumulative probabilities (on CPU
/// this replaces at::multinomial, which cost ~0.3 ms per rollout step). Throws when a row's
/// probabilities are not finite or sum to zero.
at::Tensor SampleActions(const at::Tensor& log_probs);

}  // namespace skillgrid::agents
