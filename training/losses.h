// The pieces of the policy-gradient update that have exact reference answers: GAE, the PPO and
// A2C losses, and the IBP prior on routing logits.
#pragma once

#include <ATen/ATen.h>

namespace skillgrid::training {

/// Advantages and returns of a rollout, time-major (T, N).
struct GaeResult {
  /// Generalised advantage estimates (T, N).
  at::Tensor advantages;
  /// Value targets: values + advantages (T, N).
  at::Tensor returns;
};

/// GAE over a time-major rollout: rewards, values, dones (1 where the episode ended at that step,
/// so the next step's value is not used) all (T, N), last_values (N) the values after the last
/// step. delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t; A_t = delta_t + gamma * lambda *
/// (1 - d_t) * A_{t+1}.
GaeResult ComputeGae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& dones,
                     const at::Tensor& last_values, double gamma, double lambda);

/// Coefficients of the policy-gradient losses.
struct LossCoefficients {
  /// PPO clip epsilon (policy ratio and value change).
  double clip = 0.2;
  /// Use the max of the clipped and unclipped value errors (BabyAI) instead of the plain error.
  bool clip_value_loss = true;
  /// Entropy bonus weight.
  double entropy_coef = 0.01;
  /// Value loss weight.
  double value_coef = 0.5;
};

/// The loss and its parts for one minibatch (scalars; loss has the graph).
struct LossTerms {
  /// policy_loss - entropy_coef * entropy + value_coef * value_loss.
  at::Tensor loss;
  /// Policy part (clipped surrogate for PPO, -logp * A for A2C).
  at::Tensor policy_loss;
  /// Value part (squared error, clipped for PPO when enabled).
  at::Tensor value_loss;
  /// Mean policy entropy.
  at::Tensor entropy;
  /// Approximate KL(old || new), CleanRL's ((r - 1) - log r).mean(); 0 for A2C.
  double approx_kl = 0.0;
  /// Fraction of rows whose ratio left [1 - clip, 1 + clip]; 0 for A2C.
  double clip_fraction = 0.0;
};

/// PPO loss: log_probs (B, A) of the current policy, values (B), actions (B) int64, and the
/// rollout's old_log_probs, old_values, advantages, returns (B each).
LossTerms PpoLoss(const at::Tensor& log_probs, const at::Tensor& values, const at::Tensor& actions,
                  const at::Tensor& old_log_probs, const at::Tensor& old_values, const at::Tensor& advantages,
                  const at::Tensor& returns, const LossCoefficients& c);

/// A2C loss: -(log pi(a) * A).mean() - entropy_coef * H + value_coef * (V - R)^2.mean().
LossTerms A2cLoss(const at::Tensor& log_probs, const at::Tensor& values, const at::Tensor& actions,
                  const at::Tensor& advantages, const at::Tensor& returns, const LossCoefficients& c);

/// Policy distillation (Rusu et al.; Hinton's temperature): per row,
/// tau^2 * KL(softmax(t / tau) || softmax(s / tau)) where t and s are the teacher's and the
/// student's log-probabilities (B, A). Returns (B); the teacher side carries no gradient. The
/// tau^2 factor keeps the gradient's scale independent of tau.
at::Tensor DistillationKl(const at::Tensor& student_log_probs, const at::Tensor& teacher_log_probs, double temperature);

/// Negative log IBP prior of one layer's routing logits (T, S) as in Polytropon's code:
/// binarised sigmoid(Z) > 0.5 with a straight-through gradient, alpha terms dropped.
at::Tensor NegLogIbpPrior(const at::Tensor& logits);

}  // namespace skillgrid::training
