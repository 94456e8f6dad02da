// Skill inventories: per-skill parameter deltas for one weight, mixed per task by router weights.
#pragma once

#include <cstdint>
#include <string>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "skills/router.h"

namespace skillgrid::skills {

/// How each skill parameterises its change to a weight.
enum class InventoryKind {
  kLowRank,  ///< LoRA: per skill A (d_in x r) and B (r x d_out), delta = x A B / r.
  kDense,    ///< A full (d_in x d_out) delta per skill.
  kSparse,   ///< A full-size delta per skill restricted to a fixed random mask (LT-SFT style).
};

/// Lower-case name of an inventory kind ("lowrank", "dense", "sparse").
std::string InventoryKindName(InventoryKind kind);

/// Options of a SkillInventory; the skill count S comes from the router.
struct SkillInventoryOptions {
  /// Low-rank skills of rank 8 (the PEFT default).
  SkillInventoryOptions() = default;
  /// Low-rank skills of the given rank.
  static SkillInventoryOptions LowRank(int64_t rank);
  /// Dense full-size deltas.
  static SkillInventoryOptions Dense();
  /// Sparse deltas on a fixed mask drawing density * S * d_in * d_out (entry, skill) pairs.
  static SkillInventoryOptions Sparse(double density);

  /// Parameterisation of the skills.
  TORCH_ARG(InventoryKind, kind) = InventoryKind::kLowRank;
  /// Low-rank: rank r; the delta is scaled by 1/r.
  TORCH_ARG(int64_t, rank) = 8;
  /// Sparse: fraction of (entry, skill) pairs that are trainable, in (0, 1].
  TORCH_ARG(double, density) = 0.1;
  /// Low-rank: one B shared by all skills (AdaMix's shared up-projection).
  TORCH_ARG(bool, share_b) = false;
  /// Zero-initialise B (low-rank) or the deltas (dense, sparse) so the layer starts as its base.
  TORCH_ARG(bool, zero_init) = true;
  /// Dense and sparse: every skill also owns a bias delta (d_out), mixed like the output side.
  TORCH_ARG(bool, bias_skills) = false;
};

/// Per-task low-rank factors mixed from the skills: A (U, d_in, r) and B (U, r, d_out), the
/// 1/r scale already folded into B.
struct LowRankFactors {
  /// Mixed input-side factor per task, (U, d_in, r).
  at::Tensor a;
  /// Mixed and scaled output-side factor per task, (U, r, d_out).
  at::Tensor b;
};

/// Every mixture's low-rank factors side by side, the layout of the masked matmul form
/// x W^T + ((x A) * mask) B: column block u (width r) of A and row block u of B are mixture u.
struct SideBySideFactors {
  /// Mixed input-side factors, (d_in, U * r).
  at::Tensor a;
  /// Mixed and scaled (1/r) output-side factors, (U * r, d_out).
  at::Tensor b;
};

/// The skills of one weight seen as a (d_in x d_out) matrix (x @ M), with h heads splitting the
/// input side (A, dense/sparse rows) and the output side (B, bias) into equal blocks.
/// Mixing is a product of averages: A_t = sum_s w_ts A_s and B_t = sum_s w_ts B_s.
class SkillInventoryImpl : public torch::nn::Cloneable<SkillInventoryImpl> {
 public:
  /// Builds S skills for a d_in -> d_out weight with n_splits heads (which must divide both).
  SkillInventoryImpl(SkillInventoryOptions options, int64_t n_skills, int64_t d_in, int64_t d_out, int64_t n_splits);

  /// (Re)creates and initialises the skill parameters (and the sparse mask) from the options.
  void reset() override;
  /// Prints "skillgrid::skills::SkillInventory(kind=lowrank, n_skills=9, d_in=128, d_out=128, rank=8)".
  void pretty_print(std::ostream& stream) const override;

  /// Low-rank only: the mixed factors for the tasks whose weights are given (U, h, S).
  LowRankFactors MixLowRank(const SkillWeights& weights) const;
  /// Low-rank only: MixLowRank's factors laid side by side. With one routing head and
  /// per-skill factors this is one autograd node (the composite costs about a dozen per call).
  SideBySideFactors MixLowRankSideBySide(const SkillWeights& weights) const;
  /// The mixed weight delta per task, (U, d_in, d_out), for every inventory kind.
  at::Tensor MixDelta(const SkillWeights& weights) const;
  /// The mixed bias delta per task (U, d_out), or an undefined tensor without bias skills.
  at::Tensor MixBiasDelta(const SkillWeights& weights) const;

  /// Whether the skills are low-rank (layers then avoid forming the dense delta).
  bool is_low_rank() const { return options.kind() == InventoryKind::kLowRank; }
  /// Number of skills S.
  int64_t n_skills() const { return n_skills_; }
  /// Input size d_in of the matrix view.
  int64_t d_in() const { return d_in_; }
  /// Output size d_out of the matrix view.
  int64_t d_out() const { return d_out_; }
  /// Number of heads h.
  int64_t n_splits() const { return n_splits_; }

  /// Low-rank A, (S, d_in, r).
  const at::Tensor& lora_a() const { return lora_a_; }
  /// Low-rank B, (S, r, d_out), or (1, r, d_out) when share_b.
  const at::Tensor& lora_b() const { return lora_b_; }
  /// Dense deltas (S, d_in, d_out).
  const at::Tensor& dense_delta() const { return dense_delta_; }
  /// Sparse delta values (k), one per masked (entry, skill) pair.
  const at::Tensor& sparse_values() const { return sparse_values_; }
  /// Sparse mask: flat entry index (row * d_out + col) of every value, (k).
  const at::Tensor& sparse_entries() const { return sparse_entries_; }
  /// Sparse mask: skill of every value, (k).
  const at::Tensor& sparse_skills() const { return sparse_skills_; }
  /// Bias deltas (S, d_out) when bias_skills.
  const at::Tensor& bias_delta() const { return bias_delta_; }

  /// The options the inventory was built with.
  SkillInventoryOptions options;

 private:
  int64_t n_skills_, d_in_, d_out_, n_splits_;
  at::Tensor lora_a_, lora_b_, dense_delta_, sparse_values_, sparse_entries_, sparse_skills_;
  at::Tensor bias_delta_;
};

/// Module holder for SkillInventoryImpl.
TORCH_MODULE(SkillInventory);

/// Mixes per-skill blocks split along their first matrix axis: params (S, d, k) with h row
/// blocks of d/h, weights (U, h, S) -> (U, d, k). Head q's weights mix rows [q d/h, (q+1) d/h).
at::Tensor MixAlongInput(const at::Tensor& weights, const at::Tensor& params);
/// Mixes per-skill blocks split along their last axis: params (S, k, d) with h column blocks of
/// d/h, weights (U, h, S) -> (U, k, d); a params with S = 1 (shared) is returned broadcast.
at::Tensor MixAlongOutput(const at::Tensor& weights, const at::Tensor& params);

}  // namespace skillgrid::skills
