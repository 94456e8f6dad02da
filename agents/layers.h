// Layers that may be skill-routed: the one seam where agents decide, per layer family, whether a
// Linear / Conv2d / recurrent cell is a plain torch layer or a skills/ SkillLinear.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include "agents/recurrent_kernels.h"
#include "skills/skill_conv_embedding.h"
#include "skills/skill_linear.h"
#include "skills/task_batch.h"

namespace skillgrid::agents {

/// Layer families of an agent; routing is switched on per family.
enum class LayerFamily {
  kConv,    ///< image convolutions (stem and FiLM convolutions)
  kFilm,    ///< FiLM conditioning Linears (gamma, beta)
  kText,    ///< instruction GRU gates
  kMemory,  ///< LSTM memory gates
  kHeads,   ///< actor and critic MLPs
};

/// Lower-case name of a family ("conv", "film", "text", "memory", "heads").
std::string LayerFamilyName(LayerFamily family);
/// Parses a family name; throws std::invalid_argument naming the valid ones.
LayerFamily ParseLayerFamily(const std::string& name);
/// Every family, in declaration order.
const std::vector<LayerFamily>& AllLayerFamilies();

/// How the layers of an agent are skill-routed (the method configuration stored in checkpoints).
struct RoutingOptions {
  /// Router: none (plain layers) | shared | private | expert | poly | mhr | mu | adamix.
  TORCH_ARG(std::string, router) = "none";
  /// Number of tasks T (levels); task ids are 0..T-1.
  TORCH_ARG(int64_t, n_tasks) = 1;
  /// Skills per routed layer S (poly, mhr, mu, adamix; shared/private/expert fix their own).
  TORCH_ARG(int64_t, n_skills) = 9;
  /// Skill inventory: lowrank | dense | sparse.
  TORCH_ARG(std::string, inventory) = "lowrank";
  /// Rank r of low-rank skills.
  TORCH_ARG(int64_t, rank) = 8;
  /// Density of sparse skills, in (0, 1] (Polytropon's BabyAI used 0.1).
  TORCH_ARG(double, density) = 0.1;
  /// Routing heads h (MHR); a layer whose sizes h does not divide uses the largest divisor of h
  /// that divides both.
  TORCH_ARG(int64_t, heads) = 1;
  /// Layer families that are routed (names as LayerFamilyName); default: the whole network.
  TORCH_ARG(std::vector<std::string>, families) = {"conv", "film", "text", "memory", "heads"};
  /// Level names in task-id order (needed by the expert allocation; stored for reference).
  TORCH_ARG(std::vector<std::string>, task_names) = {};

 public:
  /// Whether `family` gets skill-routed layers.
  bool Routes(LayerFamily family) const;
  /// Checks the values; throws std::invalid_argument with a one-line message.
  void Validate() const;
  /// JSON form (all fields).
  nlohmann::json ToJson() const;
  /// Inverse of ToJson; missing fields keep their defaults.
  static RoutingOptions FromJson(const nlohmann::json& j);
};

/// Builds the skills/ SkillLinearOptions for one routed d_in -> d_out layer.
skills::SkillLinearOptions MakeSkillLinearOptions(const RoutingOptions& routing, int64_t in, int64_t out,
                                                  bool bias);

/// A RoutedLinear with its routing resolved for one batch (see skills::PreparedSkillLinear):
/// recurrent loops prepare once per sequence and Apply() at every step.
struct PreparedLinear {
  /// x (N, ..., in) with the prepared batch's rows -> (N, ..., out).
  at::Tensor Apply(const at::Tensor& x) const;
  /// The plain layer (when not routed).
  torch::nn::Linear plain{nullptr};
  /// The prepared skill layer (when routed).
  skills::PreparedSkillLinear skill;
  /// The map as matmuls (plain, or low-rank skills with one head) for fused recurrences;
  /// false when it has no such form.
  bool ToRecurrentMap(RecurrentMap* map) const;
};

/// A Linear layer that is either plain torch or a SkillLinear (chosen at construction).
class RoutedLinearImpl : public torch::nn::Cloneable<RoutedLinearImpl> {
 public:
  /// A d_in -> d_out layer, skill-routed when `routing` routes `family`.
  RoutedLinearImpl(const RoutingOptions& routing, LayerFamily family, int64_t in, int64_t out, bool bias = true);
  /// (Re)creates the layer.
  void reset() override;
  /// x (N, ..., in) -> (N, ..., out); `batch` (the task of each row of dim 0) is used when routed.
  at::Tensor forward(const at::Tensor& x, const skills::TaskBatch& batch);
  /// Resolves the routing of `batch` once for repeated Apply() calls (the steps of a recurrence).
  PreparedLinear Prepare(const skills::TaskBatch& batch);
  /// The shared base weight (out, in) (the plain layer's weight when not routed).
  at::Tensor& weight();
  /// The shared base bias (out), undefined without bias.
  at::Tensor& bias();
  /// Whether this layer is skill-routed.
  bool routed() const { return !skill_.is_empty(); }
  /// The SkillLinear (empty holder when not routed).
  skills::SkillLinear skill() const { return skill_; }

 private:
  RoutingOptions routing_;
  LayerFamily family_;
  int64_t in_, out_;
  bool bias_;
  torch::nn::Linear plain_{nullptr};
  skills::SkillLinear skill_{nullptr};
};
/// Module holder for RoutedLinearImpl.
TORCH_MODULE(RoutedLinear);

/// BabyAI's Linear init: weight N(0,1) with each output row rescaled to unit L2 norm, bias 0.
void InitBabyAILinear(RoutedLinearImpl& layer);

/// A 2-D convolution (stride 1) that is either torch's Conv2d or, when routed, a skills/ SkillConv2d
/// (one oneDNN convolution per distinct task with that task's merged kernel; Conv2d's init).
class RoutedConv2dImpl : public torch::nn::Cloneable<RoutedConv2dImpl> {
 public:
  /// in -> out channels, square kernel, zero padding, stride 1.
  RoutedConv2dImpl(const RoutingOptions& routing, LayerFamily family, int64_t in, int64_t out, int64_t kernel,
                   int64_t padding);
  /// (Re)creates the layer.
  void reset() override;
  /// x (N, in, H, W) -> (N, out, H', W').
  at::Tensor forward(const at::Tensor& x, const skills::TaskBatch& batch);
  /// The kernels (K, out, in, k, k) and biases (K, out) for `batch` (one routing draw when
  /// routed): K = 1 when one kernel serves every row, else one per distinct task in batch order.
  std::pair<at::Tensor, at::Tensor> BatchKernels(const skills::TaskBatch& batch);
  /// Whether this layer is skill-routed.
  bool routed() const { return !skill_.is_empty(); }
  /// The SkillConv2d (empty holder when not routed).
  skills::SkillConv2d skill() const { return skill_; }
  /// Sets the arithmetic of forward's convolutions (default fp32; see skills::ConvPrecision).
  void set_precision(skills::ConvPrecision precision);
  /// The arithmetic of forward's convolutions.
  skills::ConvPrecision precision() const { return precision_; }

 private:
  RoutingOptions routing_;
  LayerFamily family_;
  int64_t in_, out_, kernel_, padding_;
  skills::ConvPrecision precision_ = skills::ConvPrecision::kFloat32;
  torch::nn::Conv2d plain_{nullptr};
  skills::SkillConv2d skill_{nullptr};
};
/// Module holder for RoutedConv2dImpl.
TORCH_MODULE(RoutedConv2d);

/// An LSTM cell built from two (possibly routed) Linears, x -> 4h and h -> 4h, gate order
/// i, f, g, o as torch.nn.LSTMCell, initialised U(+-1/sqrt(hidden)) like it.
class LstmCellImpl : public torch::nn::Cloneable<LstmCellImpl> {
 public:
  /// input_size -> hidden_size cell; routed when `routing` routes `family`.
  LstmCellImpl(const RoutingOptions& routing, LayerFamily family, int64_t input_size, int64_t hidden_size);
  /// (Re)creates the gate layers.
  void reset() override;
  /// One step: x (N, in), state (N, 2*hidden) = concat(h, c) -> new state (N, 2*hidden).
  /// `x_gates` may hold the precomputed input projection (N, 4*hidden) to skip the input Linear.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& state, const skills::TaskBatch& batch,
                     const at::Tensor& x_gates = at::Tensor());
  /// The hidden-to-hidden map with its routing resolved for `batch` (one draw per sequence).
  PreparedLinear PrepareRecurrent(const skills::TaskBatch& batch);
  /// One step from precomputed input gates x_gates (N, 4*hidden) and a prepared hidden map.
  at::Tensor Step(const at::Tensor& x_gates, const at::Tensor& state, const PreparedLinear& hh) const;
  /// A whole unroll: input gates (N, R, 4*hidden) from InputGates, initial state (N, 2*hidden),
  /// resets (N, R) multiplying the state before every step k > 0, and a prepared hidden map ->
  /// the states after each step (N, R, 2*hidden). One fused op when the map has a matmul form.
  at::Tensor Unroll(const at::Tensor& gates, const at::Tensor& state, const at::Tensor& resets,
                    const PreparedLinear& hh) const;
  /// The input projection x -> 4*hidden (for all time steps at once).
  at::Tensor InputGates(const at::Tensor& x, const skills::TaskBatch& batch);
  /// Hidden size.
  int64_t hidden_size() const { return hidden_; }
  /// The input-to-gates layer x -> 4*hidden.
  RoutedLinear input_map() const { return ih_; }
  /// The hidden-to-gates layer h -> 4*hidden.
  RoutedLinear hidden_map() const { return hh_; }

 private:
  RoutingOptions routing_;
  LayerFamily family_;
  int64_t input_, hidden_;
  RoutedLinear ih_{nullptr}, hh_{nullptr};
};
/// Module holder for LstmCellImpl.
TORCH_MODULE(LstmCell);

/// Instruction encoder: word embedding, then a unidirectional GRU whose output is taken at the
/// last non-pad token (BabyAI 1.1). The GRU gates are (possibly routed) Linears, gate order
/// r, z, n as torch.nn.GRU, initialised U(+-1/sqrt(hidden)) like it.
class InstructionEncoderImpl : public torch::nn::Cloneable<InstructionEncoderImpl> {
 public:
  /// vocab ids -> word_dim embedding -> GRU(hidden); routed when `routing` routes kText.
  InstructionEncoderImpl(const RoutingOptions& routing, int64_t vocab_size, int64_t word_dim, int64_t hidden);
  /// (Re)creates the layers.
  void reset() override;
  /// tokens (U, L) int64 padded with 0, lengths (U) int64 >= 1 -> (U, hidden). Without
  /// autograd on CPU the GRU runs on host buffers (same routing draws, same values up to
  /// rounding): a rollout encodes one or two new missions per step, ~20 ops each otherwise.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& lengths, const skills::TaskBatch& batch);
  /// Output size.
  int64_t hidden_size() const { return hidden_; }

 private:
  bool HostForwardApplies(const at::Tensor& tokens);
  at::Tensor ForwardHost(const at::Tensor& tokens, const at::Tensor& lengths, const skills::TaskBatch& batch);

  RoutingOptions routing_;
  int64_t vocab_, word_dim_, hidden_;
  torch::nn::Embedding embedding_{nullptr};
  RoutedLinear ih_{nullptr}, hh_{nullptr};
};
/// Module holder for InstructionEncoderImpl.
TORCH_MODULE(InstructionEncoder);

}  // namespace skillgrid::agents
