// GAE on a hand-computed example, the PPO and A2C losses at ratio 1 and under clipping, the
// distillation KL, the IBP prior.
#include "training/losses.h"

#include <gtest/gtest.h>

#include <cmath>

#include <torch/csrc/autograd/autograd.h>

namespace skillgrid::training {
namespace {

TEST(Gae, HandComputedExample) {
  // One env, three steps; the episode ends at step 1 (so step 1 does not look at step 2).
  const at::Tensor rewards = at::tensor({1.0f, 0.0f, 2.0f}).view({3, 1});
  const at::Tensor values = at::tensor({0.5f, 0.4f, 0.3f}).view({3, 1});
  const at::Tensor dones = at::tensor({0.0f, 1.0f, 0.0f}).view({3, 1});
  const at::Tensor last = at::tensor({0.2f});
  const GaeResult r = ComputeGae(rewards, values, dones, last, 0.9, 0.8);
  // t=2: 2 + 0.9*0.2 - 0.3 = 1.88
  // t=1: 0 - 0.4 = -0.4 (done: no bootstrap, no carry)
  // t=0: delta = 1 + 0.9*0.4 - 0.5 = 0.86; A = 0.86 + 0.9*0.8*(-0.4) = 0.572
  EXPECT_NEAR(r.advantages[2][0].item<float>(), 1.88f, 1e-6);
  EXPECT_NEAR(r.advantages[1][0].item<float>(), -0.4f, 1e-6);
  EXPECT_NEAR(r.advantages[0][0].item<float>(), 0.572f, 1e-6);
  EXPECT_NEAR(r.returns[0][0].item<float>(), 1.072f, 1e-6);
  EXPECT_NEAR(r.returns[1][0].item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(r.returns[2][0].item<float>(), 2.18f, 1e-6);
}

TEST(Gae, LambdaOneIsDiscountedReturnMinusValue) {
  const at::Tensor rewards = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({4, 1});
  const at::Tensor values = at::zeros({4, 1});
  const at::Tensor dones = at::zeros({4, 1});
  const GaeResult r = ComputeGae(rewards, values, dones, at::tensor({10.0f}), 0.5, 1.0);
  // 1 + 0.5*2 + 0.25*3 + 0.125*4 + 0.0625*10
  EXPECT_NEAR(r.returns[0][0].item<float>(), 1 + 1 + 0.75 + 0.5 + 0.625, 1e-5);
}

struct Batch {
  at::Tensor logits, log_probs, actions, advantages, values, returns;
};

Batch MakeBatch() {
  at::manual_seed(0);
  Batch b;
  b.logits = at::randn({6, 7}).requires_grad_(true);
  b.log_probs = at::log_softmax(b.logits, 1);
  b.actions = at::tensor({0, 1, 2, 3, 4, 5}, at::kLong);
  b.advantages = at::tensor({1.0f, -2.0f, 0.5f, 3.0f, -1.0f, 0.25f});
  b.values = at::randn({6}).requires_grad_(true);
  b.returns = at::randn({6});
  return b;
}

TEST(PpoLoss, AtRatioOneEqualsVanillaPolicyGradient) {
  Batch b = MakeBatch();
  const at::Tensor logp = b.log_probs.gather(1, b.actions.unsqueeze(1)).squeeze(1);
  LossCoefficients c;
  const LossTerms ppo = PpoLoss(b.log_probs, b.values, b.actions, logp.detach(), b.values.detach(), b.advantages,
                                b.returns, c);
  EXPECT_NEAR(ppo.policy_loss.item<float>(), -b.advantages.mean().item<float>(), 1e-6);
  EXPECT_NEAR(ppo.value_loss.item<float>(), (b.values - b.returns).pow(2).mean().item<float>(), 1e-6);
  EXPECT_DOUBLE_EQ(ppo.approx_kl, 0.0);
  EXPECT_DOUBLE_EQ(ppo.clip_fraction, 0.0);
  const at::Tensor g_ppo = torch::autograd::grad({ppo.policy_loss}, {b.logits}, {}, true)[0];
  const at::Tensor g_pg = torch::autograd::grad({-(logp * b.advantages).mean()}, {b.logits}, {}, true)[0];
  EXPECT_TRUE(at::allclose(g_ppo, g_pg, 1e-5, 1e-6));
  // The total combines the parts with the coefficients.
  EXPECT_NEAR(ppo.loss.item<float>(),
              (ppo.policy_loss - 0.01 * ppo.entropy + 0.5 * ppo.value_loss).item<float>(), 1e-6);
  // A2C's policy loss -(logp A).mean() has the same gradient at this point, and the same value part.
  const LossTerms a2c = A2cLoss(b.log_probs, b.values, b.actions, b.advantages, b.returns, c);
  const at::Tensor g_a2c = torch::autograd::grad({a2c.policy_loss}, {b.logits}, {}, true)[0];
  EXPECT_TRUE(at::allclose(g_a2c, g_pg, 1e-5, 1e-6));
  EXPECT_NEAR(a2c.value_loss.item<float>(), ppo.value_loss.item<float>(), 1e-6);
}

TEST(PpoLoss, ClippedRatioHasNoGradient) {
  Batch b = MakeBatch();
  const at::Tensor logp = b.log_probs.gather(1, b.actions.unsqueeze(1)).squeeze(1);
  // Old probabilities such that ratio = 1.5 everywhere; only rows with negative advantages keep
  // a gradient (min picks the unclipped term there).
  const at::Tensor old = (logp - std::log(1.5)).detach();
  LossCoefficients c;
  c.entropy_coef = 0.0;
  const LossTerms ppo = PpoLoss(b.log_probs, b.values, b.actions, old, b.values.detach(), b.advantages, b.returns, c);
  EXPECT_NEAR(ppo.clip_fraction, 1.0, 1e-9);
  const at::Tensor g = torch::autograd::grad({ppo.policy_loss}, {b.logits}, {}, true)[0];
  for (int64_t i = 0; i < 6; ++i) {
    const bool positive = b.advantages[i].item<float>() > 0;
    EXPECT_EQ(g[i].abs().sum().item<float>() == 0.0f, positive) << "row " << i;
  }
  // Policy loss: -mean(min(1.5 A, 1.2 A)).
  const at::Tensor expect = -at::min(1.5 * b.advantages, 1.2 * b.advantages).mean();
  EXPECT_NEAR(ppo.policy_loss.item<float>(), expect.item<float>(), 1e-5);
}

TEST(PpoLoss, ValueLossIsMaxOfClippedAndUnclipped) {
  const at::Tensor values = at::tensor({1.0f, 0.0f});
  const at::Tensor old_values = at::tensor({0.0f, 0.0f});
  const at::Tensor returns = at::tensor({1.0f, 2.0f});
  const at::Tensor lp = at::log_softmax(at::zeros({2, 7}), 1);
  const at::Tensor actions = at::zeros({2}, at::kLong);
  LossCoefficients c;
  const LossTerms t = PpoLoss(lp, values, actions, lp.select(1, 0), old_values, at::zeros({2}), returns, c);
  // Row 0: unclipped error 0, clipped value 0.2 -> error 0.64; row 1: both 4.
  EXPECT_NEAR(t.value_loss.item<float>(), (0.64f + 4.0f) / 2, 1e-5);
}

TEST(DistillationKl, HandComputedValuesAndGradientAtTwoTemperatures) {
  // Teacher (0.5, 0.25, 0.25), student (0.25, 0.5, 0.25), given as log-probabilities.
  const at::Tensor teacher = at::tensor({0.5f, 0.25f, 0.25f}).log().view({1, 3}).requires_grad_(true);
  at::Tensor student = at::tensor({0.25f, 0.5f, 0.25f}).log().view({1, 3}).requires_grad_(true);
  // tau = 1: 0.5 ln 2 + 0.25 ln 0.5 = 0.25 ln 2.
  EXPECT_NEAR(DistillationKl(student, teacher, 1.0)[0].item<double>(), 0.25 * std::log(2.0), 1e-6);
  // tau = 2 flattens both to sqrt(p) / sum: (a, b, b) and (b, a, b) with a = 0.7071 / 1.7071 and
  // b = 0.5 / 1.7071, so tau^2 KL = 4 (a - b) ln(a / b).
  const double a = std::sqrt(0.5) / (std::sqrt(0.5) + 1.0), b = 0.5 / (std::sqrt(0.5) + 1.0);
  const at::Tensor kl = DistillationKl(student, teacher, 2.0);
  EXPECT_NEAR(kl[0].item<double>(), 4.0 * (a - b) * std::log(a / b), 1e-6);
  // d/ds = tau (softmax(s / tau) - softmax(t / tau)); the teacher gets no gradient.
  kl.sum().backward();
  EXPECT_NEAR(student.grad()[0][0].item<double>(), 2.0 * (b - a), 1e-6);
  EXPECT_NEAR(student.grad()[0][1].item<double>(), 2.0 * (a - b), 1e-6);
  EXPECT_NEAR(student.grad()[0][2].item<double>(), 0.0, 1e-6);
  EXPECT_FALSE(teacher.grad().defined());
}

TEST(DistillationKl, IsZeroForTheSamePolicyAndRejectsMismatchedShapes) {
  const at::Tensor logp = at::randn({4, 7}).log_softmax(1);
  const at::Tensor kl = DistillationKl(logp, logp + 3.0, 0.5);  // a per-row constant changes nothing
  EXPECT_EQ(kl.sizes(), at::IntArrayRef({4}));
  EXPECT_LT(kl.abs().max().item<double>(), 1e-6);
  EXPECT_THROW(DistillationKl(logp, logp.narrow(1, 0, 6), 1.0), c10::Error);
  EXPECT_THROW(DistillationKl(logp, logp, 0.0), c10::Error);
}

TEST(Ibp, PriorPrefersFewerSharedSkillPatterns) {
  // Two tasks, three skills: all tasks using all skills vs each skill used by one task.
  const at::Tensor shared = at::full({2, 3}, 5.0);
  const at::Tensor apart = at::tensor({5.0, -5.0, 5.0, -5.0, 5.0, -5.0}, at::kDouble).view({2, 3});
  const double a = NegLogIbpPrior(shared).item<double>();
  const double b = NegLogIbpPrior(apart).item<double>();
  EXPECT_TRUE(std::isfinite(a));
  EXPECT_TRUE(std::isfinite(b));
  // All-shared: m_j = 2 -> sum lgamma(1) + lgamma(2) = 0, one history with K=3 -> -log 3! ...
  EXPECT_NEAR(a, std::lgamma(4.0), 1e-5);
}

}  // namespace
}  // namespace skillgrid::training
