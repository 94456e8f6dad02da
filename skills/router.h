// Routers: per-task (and per-head) weights over an inventory of skills.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Generator.h>
#include <c10/util/Optional.h>
#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "skills/task_batch.h"

namespace skillgrid::skills {

/// How a router turns a task id into weights over skills.
enum class RouterKind {
  kPoly,    ///< Learned logits Z (Polytropon; MHR when n_splits > 1).
  kFixed,   ///< A fixed allocation matrix, only normalised (Shared, Private, Expert, custom).
  kMu,      ///< Uniform 1/S for every task and head (Poly-mu / MHR-mu).
  kAdaMix,  ///< One random skill per forward call while training, uniform average at eval.
};

/// Lower-case name of a router kind ("poly", "fixed", "mu", "adamix"), for logs and JSON.
std::string RouterKindName(RouterKind kind);

/// Options of a Router. Use the named constructors (Poly, Mhr, Shared, ...) for the methods.
struct RouterOptions {
  /// Number of tasks T and skills S; the remaining fields keep their defaults (a Poly router).
  RouterOptions(int64_t n_tasks, int64_t n_skills);

  /// Poly: learned logits (T x S), relaxed Bernoulli at tau while training.
  static RouterOptions Poly(int64_t n_tasks, int64_t n_skills);
  /// MHR: Poly with n_splits heads, each with its own weights over the same S skills.
  static RouterOptions Mhr(int64_t n_tasks, int64_t n_skills, int64_t n_splits);
  /// Shared: one skill that every task uses (allocation ones(T x 1)).
  static RouterOptions Shared(int64_t n_tasks);
  /// Private: one skill per task (allocation I_T).
  static RouterOptions Private(int64_t n_tasks);
  /// Fixed/custom: a non-negative (T x S) allocation, normalised per task at use.
  static RouterOptions Fixed(const at::Tensor& allocation);
  /// Mu: the uniform average of S skills for every task (Poly-mu; MHR-mu with n_splits).
  static RouterOptions Mu(int64_t n_tasks, int64_t n_skills);
  /// AdaMix: M modules, one drawn at random per forward call while training, averaged at eval.
  static RouterOptions AdaMix(int64_t n_tasks, int64_t n_modules);

  /// Number of tasks T (valid task ids are 0..T-1).
  TORCH_ARG(int64_t, n_tasks);
  /// Number of skills S in each head.
  TORCH_ARG(int64_t, n_skills);
  /// Number of heads h (MHR); 1 is plain Poly. Layers check that h divides their dimensions.
  TORCH_ARG(int64_t, n_splits) = 1;
  /// Routing method.
  TORCH_ARG(RouterKind, kind) = RouterKind::kPoly;
  /// Relaxed-Bernoulli temperature tau used while training (Poly only).
  TORCH_ARG(double, temperature) = 1.0;
  /// Poly while training: relaxed-Bernoulli samples (true) or the plain sigmoid (false).
  TORCH_ARG(bool, relaxed_bernoulli) = true;
  /// Poly: round the (sampled) probabilities in the forward pass, keep their gradient.
  TORCH_ARG(bool, straight_through) = false;
  /// Poly: logits are initialised U(-init_range, init_range), so sigmoid(Z) ~ 0.5.
  TORCH_ARG(double, init_range) = 1e-3;
  /// Fixed: the (T x S) or (T x h*S) non-negative allocation (stored as a buffer).
  TORCH_ARG(at::Tensor, allocation);
};

/// Weights over skills for the U distinct tasks of a batch, shape (U, h, S) each; every head's
/// weights are non-negative and (normalised routers) sum to 1. The A (input-side) and B
/// (output-side) factors of an inventory may be mixed with different weights (AdaMix draws
/// them independently); all other routers return the same tensor twice.
struct SkillWeights {
  /// Weights for the input-side factor (low-rank A, dense/sparse deltas).
  at::Tensor for_a;
  /// Weights for the output-side factor (low-rank B, bias deltas).
  at::Tensor for_b;
  /// These weights on `device`, copied only when elsewhere. Parameter-free routers (Mu, AdaMix)
  /// build their eval weights on the host; inventories on a CUDA device mix with them.
  SkillWeights To(const at::Device& device) const;
};

/// While alive, routing draws on the calling thread (Poly's relaxed-Bernoulli noise, AdaMix's
/// picks) come from `generator` instead of torch's default one. Parallel update workers each hold
/// one, so their draws do not race for the shared default generator and stay reproducible.
class ScopedRoutingGenerator {
 public:
  /// Routes this thread's draws to `generator` until destruction (scopes nest).
  explicit ScopedRoutingGenerator(at::Generator generator);
  ~ScopedRoutingGenerator();
  ScopedRoutingGenerator(const ScopedRoutingGenerator&) = delete;
  ScopedRoutingGenerator& operator=(const ScopedRoutingGenerator&) = delete;

 private:
  c10::optional<at::Generator> previous_;
};

/// The generator routing draws use on this thread: the innermost ScopedRoutingGenerator's, or
/// nullopt (torch's default generator).
c10::optional<at::Generator> RoutingGenerator();

/// Uniform noise for a relaxed-Bernoulli sample shaped like `logits`, clamped to [eps, 1 - eps],
/// from RoutingGenerator(); no gradient.
at::Tensor DrawRoutingUniform(const at::Tensor& logits);

/// The relaxed-Bernoulli sample of SampleRelaxedBernoulli for given uniform noise (composite ops).
at::Tensor RelaxedBernoulliFromUniform(const at::Tensor& logits, const at::Tensor& uniform, double temperature);

/// NormaliseSkillScores(RelaxedBernoulliFromUniform(...)) over the last axis; on CPU one fused
/// autograd op (Poly's training-time routing weights), elsewhere the composite.
at::Tensor NormalisedRelaxedBernoulliFromUniform(const at::Tensor& logits, const at::Tensor& uniform,
                                                 double temperature);

/// Draws reparameterised relaxed-Bernoulli samples in (0, 1) with probability sigmoid(logits)
/// at temperature tau, matching PyTorch's RelaxedBernoulli.rsample (clamps included).
at::Tensor SampleRelaxedBernoulli(const at::Tensor& logits, double temperature);

/// Normalises non-negative skill scores over the last axis: w = z / (sum(z) + 1e-12).
at::Tensor NormaliseSkillScores(const at::Tensor& scores);

/// A per-layer (or shared across layers) router over skills. Routing depends on the task id
/// only, so weights are produced per distinct task of a batch, never per row.
class RouterImpl : public torch::nn::Cloneable<RouterImpl> {
 public:
  /// Builds a router; Poly logits are drawn from the global torch generator.
  explicit RouterImpl(RouterOptions options);

  /// (Re)creates the logits or allocation from the options.
  void reset() override;
  /// Prints "skillgrid::skills::Router(kind=poly, n_tasks=8, n_skills=9, n_splits=1)".
  void pretty_print(std::ostream& stream) const override;

  /// Weights (U, h, S) for the distinct tasks of `batch`; checks task ids are < n_tasks.
  SkillWeights forward(const TaskBatch& batch);
  /// Weights (U, h, S) for an explicit (U) list of task ids, in the current train/eval mode.
  SkillWeights WeightsForTasks(const at::Tensor& tasks);

  /// Eval-mode, unnormalised per-skill scores (T, h, S): sigmoid(Z) for Poly (rounded when
  /// straight-through), the allocation for Fixed, ones for Mu and AdaMix. No noise.
  at::Tensor Probabilities() const;
  /// Eval-mode mixing weights (T, h, S): Probabilities() normalised per head.
  at::Tensor EvalWeights() const;

  /// Appends one task (Poly: a new logits row drawn U(-init_range, init_range)); returns its id.
  /// Optimisers holding the old logits must be rebuilt afterwards.
  int64_t AddTask();
  /// Appends one task whose eval-mode weights are `weights` (h, S), each head non-negative and
  /// summing to 1 (zero-shot routing of an unseen task): Poly stores logit(w), so sigmoid(Z) = w
  /// and normalising leaves it; Fixed appends w to its allocation; Mu and AdaMix route every
  /// task uniformly whatever `weights` say. Returns the new id.
  int64_t AddTaskWithWeights(const at::Tensor& weights);
  /// Re-draws the logits row of `task` U(-init_range, init_range) (Poly only).
  void ReinitialiseTask(int64_t task);
  /// Changes the routing method in place (e.g. kPoly -> kMu for Poly-mu); learned logits are
  /// kept so the switch can be undone.
  void set_kind(RouterKind kind);

  /// The routing method in use.
  RouterKind kind() const { return options.kind(); }
  /// Number of tasks T.
  int64_t n_tasks() const { return options.n_tasks(); }
  /// Number of skills S per head.
  int64_t n_skills() const { return options.n_skills(); }
  /// Number of heads h.
  int64_t n_splits() const { return options.n_splits(); }
  /// Learned logits (T, h*S) of a Poly router; undefined for routers created without them.
  const at::Tensor& logits() const { return logits_; }
  /// The fixed allocation (T, h*S) of a Fixed router; undefined otherwise.
  const at::Tensor& allocation() const { return allocation_; }

  /// The options this router was built with (n_tasks grows with AddTask).
  RouterOptions options;

 private:
  at::Tensor ScoresForTasks(const at::Tensor& tasks, bool sample) const;
  SkillWeights WeightsForCheckedTasks(const at::Tensor& tasks_long);
  void CheckTaskRange(int64_t min_task, int64_t max_task) const;

  at::Tensor logits_;
  at::Tensor allocation_;
};

/// Module holder for RouterImpl; pass the same Router to several layers to share routing.
TORCH_MODULE(Router);

}  // namespace skillgrid::skills
