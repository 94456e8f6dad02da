// SkillLinear: a Linear layer whose weight is base + a per-task mixture of skills.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "skills/inventory.h"
#include "skills/router.h"
#include "skills/task_batch.h"

namespace skillgrid::skills {

/// How a low-rank SkillLinear applies its per-task factors.
enum class LowRankStrategy {
  kAuto,      ///< kMasked with one routing head, else kMerged when tasks have enough rows, else kFactored.
  kMerged,    ///< Form W_t = W + (A_t B_t)^T / r per task, then one batched matmul (base FLOPs).
  kFactored,  ///< base(x) + (x A_t) B_t / r: cheaper when tasks have few rows each.
  kMasked,    ///< base(x) + ((x [A_1..A_U]) * task mask) [B_1..B_U] / r: three plain matmuls for the
              ///< whole batch, no per-task loop or row grouping (one routing head only). On CPU, rows
              ///< in long one-task runs (>= 8 rows per run on average) take x_run A_t B_t per run.
};

/// Options of a SkillLinear, e.g.
/// `SkillLinearOptions(128, 128).routing(RouterOptions::Poly(8, 9)).skills(SkillInventoryOptions::LowRank(8))`.
struct SkillLinearOptions {
  /// A in_features -> out_features layer; by default Poly over 1 task and 9 rank-8 skills.
  SkillLinearOptions(int64_t in_features, int64_t out_features);

  /// Input size d_in.
  TORCH_ARG(int64_t, in_features);
  /// Output size d_out.
  TORCH_ARG(int64_t, out_features);
  /// Whether the base layer has a bias.
  TORCH_ARG(bool, bias) = true;
  /// Freeze the base weight and bias (adapter fine-tuning); BabyAI trains them (false).
  TORCH_ARG(bool, freeze_base) = false;
  /// How the skills parameterise the weight delta.
  TORCH_ARG(SkillInventoryOptions, skills) = SkillInventoryOptions();
  /// Low-rank only: merged per-task weights or factored delta (results agree to rounding).
  TORCH_ARG(LowRankStrategy, low_rank_strategy) = LowRankStrategy::kAuto;
  /// The layer's own router (ignored when `router` is set).
  TORCH_ARG(RouterOptions, routing) = RouterOptions::Poly(1, 9);
  /// A router shared with other layers. The layer does not register it as a submodule: the
  /// module that owns it does, so parameters() lists its logits once.
  TORCH_ARG(Router, router) = nullptr;
};

class SkillLinearImpl;

/// A SkillLinear with its routing resolved for one batch (one routing draw): Apply() runs the
/// layer on any input whose dim 0 holds the batch's rows, e.g. every step of a recurrence, with
/// matmuls only. Low-rank skills with one routing head take the masked form; others re-run the
/// layer with the same routing draw.
class PreparedSkillLinear {
 public:
  /// The matmul form of a low-rank layer with base weight (out, in), bias (out or undefined) and
  /// the batch's mixed factors (one routing head); task_independent: every row uses task 0's.
  static PreparedSkillLinear FromLowRank(const at::Tensor& weight, const at::Tensor& bias,
                                         const LowRankFactors& factors, const TaskBatch& batch, bool task_independent);
  /// x (N, ..., in) with the prepared batch's N rows -> (N, ..., out).
  at::Tensor Apply(const at::Tensor& x) const;
  /// Whether Apply is the matmul form x W^T + b + ((x A) * mask) B below (low-rank skills,
  /// one routing head); false when it re-runs the layer.
  bool has_matmul_form() const { return layer_ == nullptr; }
  /// Base weight W (out, in) of the matmul form.
  const at::Tensor& weight() const { return weight_; }
  /// Base bias (out), undefined without bias.
  const at::Tensor& bias() const { return bias_; }
  /// Low-rank factors A (in, K) and B (K, out), scale included; K = U * r for mixed batches.
  const at::Tensor& a() const { return a_; }
  /// See a().
  const at::Tensor& b() const { return b_; }
  /// Row mask (N, K) selecting each row's task columns; undefined when every row shares A and B.
  const at::Tensor& mask() const { return mask_; }

 private:
  friend class SkillLinearImpl;
  SkillLinearImpl* layer_ = nullptr;  // fallback: the layer re-run on batch_
  TaskBatch batch_;
  SkillWeights weights_;               // the fallback's routing draw (undefined: forward() routes)
  bool task_independent_ = false;
  at::Tensor weight_, bias_;          // the base layer
  at::Tensor a_, b_, mask_;           // low-rank factors side by side and the row mask (masked form)
};

/// Linear layer y = x W^T + b + delta_t(x) with skills mixed per task. Low-rank skills add
/// (x A_t) B_t / r on top of the base layer; dense and sparse skills form W + delta_t per task.
/// Rows are grouped by task, so each distinct task costs one small matmul pair, never a
/// per-row weight.
class SkillLinearImpl : public torch::nn::Cloneable<SkillLinearImpl> {
 public:
  /// Builds the base Linear (PyTorch's default init), the router and the inventory.
  explicit SkillLinearImpl(SkillLinearOptions options);
  /// Convenience: a Poly layer over n_tasks tasks, n_skills skills of rank `rank`.
  SkillLinearImpl(int64_t in_features, int64_t out_features, int64_t n_tasks, int64_t n_skills, int64_t rank = 8);

  /// (Re)creates the base layer, router (unless shared) and skills.
  void reset() override;
  /// Prints the sizes, the router and the inventory kind.
  void pretty_print(std::ostream& stream) const override;
  /// Switches train/eval and drops the AdaMix merge cache (parameters may change in training).
  void train(bool on = true) override;

  /// x (N, ..., in_features) with one task per row of dim 0 -> (N, ..., out_features).
  at::Tensor forward(const at::Tensor& x, const TaskBatch& batch);
  /// Convenience overload building the TaskBatch from (N) task ids.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& task_ids);
  /// Resolves the routing of `batch` once (one draw in training mode) for repeated Apply() calls.
  PreparedSkillLinear Prepare(const TaskBatch& batch);

  /// The effective dense weight (out, in) and bias (out, or undefined) of one task under eval
  /// routing: base + mixed delta.
  std::pair<at::Tensor, at::Tensor> EffectiveWeights(int64_t task) const;
  /// A plain torch Linear holding one task's effective weights (on this layer's device), for
  /// single-task deployment.
  torch::nn::Linear ExportTask(int64_t task) const;

  /// The base (shared theta_0) layer.
  torch::nn::Linear base() const { return base_; }
  /// The router (own or shared).
  Router router() const { return router_; }
  /// The skill inventory of the weight.
  SkillInventory skills() const { return skills_; }

  /// The options the layer was built with.
  SkillLinearOptions options;

 private:
  friend class PreparedSkillLinear;
  // forward() after routing: picks the merged, factored or masked form for these weights.
  at::Tensor ForwardRouted(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights,
                           bool task_independent);
  at::Tensor ForwardFactored(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights, bool task_independent);
  at::Tensor ForwardMasked(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights);
  PreparedSkillLinear PrepareLowRank(const TaskBatch& batch, const SkillWeights& weights, bool task_independent) const;
  at::Tensor ForwardMerged(const at::Tensor& x, const TaskBatch& batch, const SkillWeights& weights, bool task_independent);
  std::pair<at::Tensor, at::Tensor> TaskWeightsAndBiases(const SkillWeights& weights) const;
  std::vector<int64_t> ParameterVersions() const;

  torch::nn::Linear base_{nullptr};
  Router router_{nullptr};
  SkillInventory skills_{nullptr};
  // AdaMix at eval is one fixed merged layer; cache it for no-grad inference, keyed by the
  // parameter versions so an optimiser step in eval mode cannot leave it stale.
  at::Tensor merged_weight_, merged_bias_;
  std::vector<int64_t> merged_versions_;
};

/// Module holder for SkillLinearImpl.
TORCH_MODULE(SkillLinear);

}  // namespace skillgrid::skills
