#include "training/losses.h"

#include <c10/util/Exception.h>

namespace skillgrid::training {

GaeResult ComputeGae(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& dones,
                     const at::Tensor& last_values, double gamma, double lambda) {
  TORCH_CHECK(rewards.dim() == 2 && values.sizes() == rewards.sizes() && dones.sizes() == rewards.sizes(),
              "ComputeGae: rewards, values and dones must all be (T, N)");
  TORCH_CHECK(last_values.dim() == 1 && last_values.size(0) == rewards.size(1), "ComputeGae: last_values must be (N)");
  const int64_t steps = rewards.size(0);
  const at::Tensor not_done = 1.0 - dones.to(rewards.scalar_type());
  GaeResult out;
  out.advantages = at::zeros_like(rewards);
  at::Tensor next_advantage = at::zeros_like(last_values);
  at::Tensor next_value = last_values;
  for (int64_t t = steps - 1; t >= 0; --t) {
    const at::Tensor mask = not_done[t];
    const at::Tensor delta = rewards[t] + gamma * next_value * mask - values[t];
    next_advantage = delta + gamma * lambda * next_advantage * mask;
    out.advantages[t].copy_(next_advantage);
    next_value = values[t];
  }
  out.returns = values + out.advantages;
  return out;
}

namespace {

at::Tensor Entropy(const at::Tensor& log_probs) { return -(log_probs.exp() * log_probs).sum(1).mean(); }

}  // namespace

LossTerms PpoLoss(const at::Tensor& log_probs, const at::Tensor& values, const at::Tensor& actions,
                  const at::Tensor& old_log_probs, const at::Tensor& old_values, const at::Tensor& advantages,
                  const at::Tensor& returns, const LossCoefficients& c) {
  LossTerms out;
  const at::Tensor logp = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1);
  const at::Tensor log_ratio = logp - old_log_probs;
  const at::Tensor ratio = log_ratio.exp();
  const at::Tensor surr1 = ratio * advantages;
  const at::Tensor surr2 = ratio.clamp(1.0 - c.clip, 1.0 + c.clip) * advantages;
  out.policy_loss = -at::min(surr1, surr2).mean();
  const at::Tensor err = (values - returns).pow(2);
  if (c.clip_value_loss) {
    const at::Tensor clipped = old_values + (values - old_values).clamp(-c.clip, c.clip);
    out.value_loss = at::max(err, (clipped - returns).pow(2)).mean();
  } else {
    out.value_loss = err.mean();
  }
  out.entropy = Entropy(log_probs);
  out.loss = out.policy_loss - c.entropy_coef * out.entropy + c.value_coef * out.value_loss;
  {
    at::NoGradGuard no_grad;
    out.approx_kl = ((ratio - 1.0) - log_ratio).mean().item<double>();
    out.clip_fraction = ((ratio - 1.0).abs() > c.clip).to(at::kFloat).mean().item<double>();
  }
  return out;
}

LossTerms A2cLoss(const at::Tensor& log_probs, const at::Tensor& values, const at::Tensor& actions,
                  const at::Tensor& advantages, const at::Tensor& returns, const LossCoefficients& c) {
  LossTerms out;
  const at::Tensor logp = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1);
  out.policy_loss = -(logp * advantages).mean();
  out.value_loss = (values - returns).pow(2).mean();
  out.entropy = Entropy(log_probs);
  out.loss = out.policy_loss - c.entropy_coef * out.entropy + c.value_coef * out.value_loss;
  return out;
}

at::Tensor DistillationKl(const at::Tensor& student_log_probs, const at::Tensor& teacher_log_probs, double temperature) {
  TORCH_CHECK(student_log_probs.dim() == 2 && teacher_log_probs.sizes() == student_log_probs.sizes(),
              "DistillationKl: student and teacher log-probabilities must both be (B, A), got ", student_log_probs.sizes(),
              " and ", teacher_log_probs.sizes());
  TORCH_CHECK(temperature > 0.0, "DistillationKl: temperature must be positive, got ", temperature);
  // Log-probabilities are logits up to a per-row constant, which the softmax removes.
  const at::Tensor teacher = (teacher_log_probs.detach() / temperature).log_softmax(1);
  const at::Tensor student = (student_log_probs / temperature).log_softmax(1);
  return (temperature * temperature) * (teacher.exp() * (teacher - student)).sum(1);
}

at::Tensor NegLogIbpPrior(const at::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 2, "NegLogIbpPrior: logits must be (T, S)");
  const int64_t tasks = logits.size(0);
  const at::Tensor p = logits.sigmoid();
  const at::Tensor hard = (p > 0.5).to(p.scalar_type());
  const at::Tensor z = hard + (p - p.detach());  // straight-through
  const at::Tensor m = z.sum(0);                  // tasks using each skill
  const at::Tensor used = (m.detach() > 0.5).to(p.scalar_type());
  at::Tensor logp = ((at::lgamma(tasks - m + 1.0) + at::lgamma(m.clamp_min(1.0))) * used).sum();
  // K_h: how many skills share each binary column ("history"); constant w.r.t. the logits.
  const at::Tensor cols = hard.t().contiguous();
  at::Tensor unique_cols, inverse, counts;
  std::tie(unique_cols, inverse, counts) = at::unique_dim(cols, 0, false, false, true);
  logp = logp - at::lgamma(counts.to(p.scalar_type()) + 1.0).sum();
  return -logp;
}

}  // namespace skillgrid::training
