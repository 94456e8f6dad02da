// Tests of routers: eval weights, relaxed-Bernoulli sampling, straight-through, adaptation rows,
// TaskBatch grouping, and bad-use messages.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "skills/router.h"
#include "skills/task_batch.h"
#include "test_util.h"
#include "tests/cuda_util.h"

namespace skillgrid::skills {
namespace {

using testing::ExpectThrowWith;
using testing::Ids;

TEST(Router, EvalWeightsAreDeterministicAndSumToOnePerHead) {
  torch::manual_seed(0);
  for (const auto& options : {RouterOptions::Poly(5, 4), RouterOptions::Mhr(5, 4, 3), RouterOptions::Shared(5),
                              RouterOptions::Private(5), RouterOptions::Mu(5, 4), RouterOptions::AdaMix(5, 4)}) {
    Router router(options);
    router->eval();
    const auto batch = TaskBatch::FromTaskIds(Ids({4, 0, 2, 2}));
    const auto first = router->forward(batch).for_a;
    const auto second = router->forward(batch).for_a;
    EXPECT_TRUE(torch::equal(first, second)) << RouterKindName(options.kind());
    EXPECT_EQ(first.sizes(), (std::vector<int64_t>{3, options.n_splits(), options.n_skills()}));
    EXPECT_TRUE(torch::allclose(first.sum(-1), torch::ones({3, options.n_splits()}), 1e-6, 1e-6));
    EXPECT_TRUE(torch::allclose(router->EvalWeights().sum(-1), torch::ones({5, options.n_splits()}), 1e-6, 1e-6));
  }
}

TEST(Router, PolyInitialLogitsAreNearZeroAndTrainingWeightsAreNoisyButNormalised) {
  torch::manual_seed(1);
  Router router(RouterOptions::Poly(4, 6));
  EXPECT_LE(router->logits().abs().max().item<double>(), 1e-3);
  const auto batch = TaskBatch::FromTaskIds(Ids({0, 1, 2, 3}));
  const auto a = router->forward(batch).for_a, b = router->forward(batch).for_a;
  EXPECT_FALSE(torch::equal(a, b));
  EXPECT_TRUE(torch::allclose(a.sum(-1), torch::ones({4, 1}), 1e-6, 1e-6));
}

TEST(Router, RelaxedBernoulliBecomesBinaryAsTemperatureFallsWithProbabilitySigmoid) {
  torch::manual_seed(2);
  const int64_t n = 20000;
  const auto logits = torch::tensor({-2.0, -0.5, 0.0, 1.0, 3.0}).repeat({n, 1});
  auto not_binary = [](const at::Tensor& s) {
    return ((s > 1e-3) & (s < 1 - 1e-3)).to(torch::kDouble).mean().item<double>();
  };
  const double at_tenth = not_binary(SampleRelaxedBernoulli(logits, 0.1));
  const double at_hundredth = not_binary(SampleRelaxedBernoulli(logits, 0.01));
  const auto samples = SampleRelaxedBernoulli(logits, /*temperature=*/1e-4);
  EXPECT_GT(at_tenth, at_hundredth);
  EXPECT_GT(at_hundredth, not_binary(samples));
  EXPECT_LT(not_binary(samples), 1e-3);
  const auto ones_rate = (samples > 0.5).to(torch::kDouble).mean(0);
  const auto expected = torch::sigmoid(logits[0]).to(torch::kDouble);
  for (int64_t j = 0; j < 5; ++j) {
    const double p = expected[j].item<double>();
    EXPECT_NEAR(ones_rate[j].item<double>(), p, 4 * std::sqrt(p * (1 - p) / n)) << "logit " << j;
  }
  // At tau = 1 the samples stay soft.
  const auto soft = SampleRelaxedBernoulli(logits, 1.0);
  EXPECT_GT(((soft > 0.05) & (soft < 0.95)).to(torch::kDouble).mean().item<double>(), 0.3);
}

TEST(Router, FusedNormalisedRelaxedBernoulliEqualsTheCompositeInValueAndGradient) {
  // The fused CPU op must give what the composite ops give, clamps included: logits beyond the
  // cap (+-36 in double) get no gradient, and uniform draws of exactly 0 or 1 stay finite.
  torch::manual_seed(7);
  auto logits = torch::randn({3, 2, 5}, torch::kDouble) * 3;
  logits[0][0][0] = 50.0;
  logits[1][1][2] = -45.0;
  auto uniform = torch::rand({3, 2, 5}, torch::kDouble);
  uniform[2][0][1] = 0.0;
  uniform[2][1][3] = 1.0;
  const auto g = torch::randn({3, 2, 5}, torch::kDouble);
  for (double temperature : {1.0, 0.3}) {
    const auto a = logits.clone().requires_grad_(), b = logits.clone().requires_grad_();
    const auto fused = NormalisedRelaxedBernoulliFromUniform(a, uniform, temperature);
    const auto composite = NormaliseSkillScores(RelaxedBernoulliFromUniform(b, uniform, temperature));
    EXPECT_TRUE(torch::allclose(fused, composite, 1e-12, 1e-14)) << fused - composite;
    EXPECT_TRUE(torch::allclose(fused.sum(-1), torch::ones({3, 2}, torch::kDouble)));
    (fused * g).sum().backward();
    (composite * g).sum().backward();
    EXPECT_TRUE(torch::allclose(a.grad(), b.grad(), 1e-10, 1e-12)) << a.grad() << "\nvs\n" << b.grad();
    EXPECT_EQ(a.grad()[0][0][0].item<double>(), 0.0);
    EXPECT_EQ(a.grad()[1][1][2].item<double>(), 0.0);
    EXPECT_NE(a.grad()[0][0][1].item<double>(), 0.0);
  }
  // In float the two agree to float rounding.
  const auto lf = logits.to(torch::kFloat).clamp(-20, 20), uf = uniform.to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(NormalisedRelaxedBernoulliFromUniform(lf, uf, 1.0),
                              NormaliseSkillScores(RelaxedBernoulliFromUniform(lf, uf, 1.0)), 1e-5, 1e-6));
}

TEST(Router, StraightThroughIsBinaryForwardWithSigmoidGradient) {
  torch::manual_seed(3);
  Router router(RouterOptions::Poly(2, 4).straight_through(true).relaxed_bernoulli(false));
  {
    torch::NoGradGuard no_grad;
    router->logits().copy_(torch::tensor({{2.0, -1.0, 0.5, -3.0}, {-1.0, -1.0, 1.0, 1.0}}));
  }
  const auto w = router->WeightsForTasks(Ids({0, 1})).for_a;
  EXPECT_TRUE(torch::allclose(w[0][0], torch::tensor({0.5f, 0.f, 0.5f, 0.f}), 1e-6, 1e-6));
  (w * torch::randn_like(w)).sum().backward();
  EXPECT_GT(router->logits().grad().abs().sum().item<double>(), 0);
}

TEST(Router, AddTaskKeepsOldRowsAndDrawsANearZeroRow) {
  torch::manual_seed(4);
  Router router(RouterOptions::Mhr(3, 4, 2));
  const auto before = router->logits().clone();
  EXPECT_EQ(router->AddTask(), 3);
  EXPECT_EQ(router->logits().sizes(), (std::vector<int64_t>{4, 8}));
  EXPECT_TRUE(torch::equal(router->logits().narrow(0, 0, 3), before));
  EXPECT_LE(router->logits()[3].abs().max().item<double>(), 1e-3);
  EXPECT_EQ(router->parameters().size(), 1u);
  EXPECT_EQ(router->parameters()[0].sizes(), router->logits().sizes());
}

TEST(Router, AddTaskWithWeightsRoutesTheNewTaskWithThoseWeightsInEveryKind) {
  torch::manual_seed(5);
  const auto w = torch::tensor({{0.5f, 0.25f, 0.25f, 0.0f}, {0.1f, 0.2f, 0.3f, 0.4f}});  // (h=2, S=4)
  auto check_new_row = [&](Router& router, const at::Tensor& expected, const std::string& kind) {
    const auto before = router->EvalWeights();
    EXPECT_EQ(router->AddTaskWithWeights(w), before.size(0)) << kind;
    const auto after = router->EvalWeights();
    ASSERT_EQ(after.size(0), before.size(0) + 1) << kind;
    EXPECT_TRUE(torch::allclose(after.narrow(0, 0, before.size(0)), before)) << kind << ": old rows changed";
    EXPECT_TRUE(torch::allclose(after[before.size(0)], expected, 1e-5, 1e-5)) << kind << ": " << after[-1];
    router->eval();  // the forward path routes the new id the same way
    const auto forward = router->WeightsForTasks(Ids({before.size(0)})).for_a[0];
    EXPECT_TRUE(torch::allclose(forward, expected, 1e-5, 1e-5)) << kind;
  };
  Router mhr(RouterOptions::Mhr(3, 4, 2));
  check_new_row(mhr, w, "mhr");
  EXPECT_EQ(mhr->parameters()[0].sizes(), (std::vector<int64_t>{4, 8}));  // the parameter itself grew
  Router fixed(RouterOptions::Fixed(torch::rand({3, 8})).n_skills(4).n_splits(2));
  check_new_row(fixed, w, "fixed");
  EXPECT_EQ(fixed->clone()->as<RouterImpl>()->n_tasks(), 4);  // the options follow, so clones rebuild
  Router mu(RouterOptions::Mu(3, 4).n_splits(2));
  check_new_row(mu, torch::full({2, 4}, 0.25), "mu");  // task-independent: always uniform

  Router poly(RouterOptions::Poly(2, 4));
  ExpectThrowWith([&] { poly->AddTaskWithWeights(torch::full({2, 4}, 0.25)); }, {"(1, 4)", "[2, 4]"});
  ExpectThrowWith([&] { poly->AddTaskWithWeights(torch::tensor({{0.5f, 0.6f, 0.0f, 0.0f}})); }, {"sum to 1"});
  ExpectThrowWith([&] { poly->AddTaskWithWeights(torch::tensor({{1.5f, -0.5f, 0.0f, 0.0f}})); }, {"min is -0.5"});
  Router straight(RouterOptions::Poly(2, 4).straight_through(true));
  ExpectThrowWith([&] { straight->AddTaskWithWeights(torch::full({1, 4}, 0.25)); }, {"straight-through"});
  EXPECT_EQ(poly->n_tasks(), 2);  // a refused row adds nothing
}

TEST(Router, BadUseMessagesPrintTheValues) {
  Router router(RouterOptions::Poly(3, 4));
  ExpectThrowWith([&] { router->forward(TaskBatch::FromTaskIds(Ids({1, 7}))); }, {"task id 7", "3 tasks", "0..2"});
  ExpectThrowWith([&] { Router(RouterOptions::Fixed(torch::ones({3, 4})).n_splits(2).n_skills(3)); }, {"[3, 4]"});
  ExpectThrowWith([&] { Router(RouterOptions::Fixed(-torch::ones({2, 2}))); }, {"min is -1"});
  ExpectThrowWith([&] { Router(RouterOptions::Poly(0, 4)); }, {"n_tasks must be >= 1, got 0"});
  ExpectThrowWith([&] { TaskBatch::FromTaskIds(torch::zeros({2, 2}, torch::kLong)); }, {"[2, 2]"});
  ExpectThrowWith([&] { TaskBatch::FromTaskIds(Ids({0, -4})); }, {"-4"});
}

TEST(TaskBatch, SlotMaskSelectsEachRowsTaskColumnsAndIsBuiltOnce) {
  const auto batch = TaskBatch::FromTaskIds(Ids({2, 0, 2, 5}));  // slots: 0 -> task 0, 1 -> 2, 2 -> 5
  const at::Tensor mask = batch.SlotMask(2, at::kFloat);
  const at::Tensor expected = torch::tensor({{0, 0, 1, 1, 0, 0}, {1, 1, 0, 0, 0, 0}, {0, 0, 1, 1, 0, 0}, {0, 0, 0, 0, 1, 1}},
                                            torch::kFloat);
  EXPECT_TRUE(torch::equal(mask, expected)) << mask;
  const TaskBatch copy = batch;
  EXPECT_TRUE(copy.SlotMask(2, at::kFloat).is_same(mask));   // cached, shared by copies
  EXPECT_FALSE(batch.SlotMask(3, at::kFloat).is_same(mask));  // another width is another mask
  EXPECT_EQ(batch.SlotMask(2, at::kDouble).scalar_type(), at::kDouble);
  TaskBatch uncached = batch;
  uncached.slot_mask_cache = nullptr;  // without a cache the mask is rebuilt, equal but new
  EXPECT_TRUE(torch::equal(uncached.SlotMask(2, at::kFloat), expected));
  EXPECT_FALSE(uncached.SlotMask(2, at::kFloat).is_same(mask));
}

TEST(TaskBatch, SlotMaskFirstBuiltInInferenceModeStillServesTraining) {
  // A rollout (inference mode) may be the first to ask for a batch's mask; the cached mask must
  // then still be usable in ops that autograd records.
  const auto batch = TaskBatch::FromTaskIds(Ids({1, 0, 1}));
  {
    c10::InferenceMode inference;
    batch.SlotMask(2, at::kFloat);
  }
  const at::Tensor x = torch::ones({3, 4}, torch::requires_grad());
  const at::Tensor y = (x * batch.SlotMask(2, at::kFloat)).sum();
  y.backward();
  EXPECT_TRUE(torch::equal(x.grad(), batch.SlotMask(2, at::kFloat)));
}

TEST(TaskBatch, GroupsRowsAndPadsBlocks) {
  const auto batch = TaskBatch::FromTaskIds(Ids({3, 1, 3, 3, 1, 5}));
  EXPECT_EQ(batch.unique_task_list, (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(batch.rows_per_task, (std::vector<int64_t>{2, 3, 1}));
  EXPECT_FALSE(batch.rows_grouped);
  EXPECT_TRUE(torch::equal(batch.slot_of_row, Ids({1, 0, 1, 1, 0, 2})));
  const auto x = torch::arange(6).to(torch::kFloat).unsqueeze(1);
  const auto grouped = batch.GroupRows(x);
  EXPECT_TRUE(torch::equal(grouped.squeeze(1), torch::tensor({1.f, 4.f, 0.f, 2.f, 3.f, 5.f})));
  EXPECT_TRUE(torch::equal(batch.UngroupRows(grouped), x));
  const auto padded = batch.ToPadded(x);
  EXPECT_EQ(padded.sizes(), (std::vector<int64_t>{3, 3, 1}));
  EXPECT_TRUE(torch::equal(batch.FromPadded(padded), x));
  // Gradients through pad/unpad reach each row exactly once.
  auto leaf = x.clone().requires_grad_();
  (batch.FromPadded(batch.ToPadded(leaf) * 2.0)).sum().backward();
  EXPECT_TRUE(torch::equal(leaf.grad(), torch::full({6, 1}, 2.0f)));
  EXPECT_TRUE(TaskBatch::FromTaskIds(Ids({0, 0, 2, 2})).padding_is_view);
}


TEST(Router_CUDA, WeightsAndProbabilitiesLiveOnTheNetworksDevice) {
  // Parameter-free routers (Mu, AdaMix) build their weights on the tasks' device; Poly's and
  // Fixed's eval scores index their state on its own device.
  SKILLGRID_REQUIRE_CUDA();
  const at::Device cuda(at::kCUDA);
  const auto batch = TaskBatch::FromTaskIds(Ids({0, 2, 2, 1}).to(cuda));
  for (const auto& options : {RouterOptions::Poly(3, 4), RouterOptions::Mhr(3, 4, 2), RouterOptions::Private(3),
                              RouterOptions::Mu(3, 4), RouterOptions::AdaMix(3, 4)}) {
    torch::manual_seed(2);
    Router host(options);
    Router device(options);
    testing::CopyState(*device, *host);
    device->to(cuda);
    for (const bool training : {true, false}) {
      device->train(training);
      const SkillWeights w = device->forward(batch);
      EXPECT_EQ(w.for_a.device().type(), at::kCUDA) << RouterKindName(options.kind());
      EXPECT_EQ(w.for_b.device().type(), at::kCUDA) << RouterKindName(options.kind());
      EXPECT_EQ(w.for_a.size(0), 3) << RouterKindName(options.kind());
    }
    EXPECT_TRUE(torch::allclose(device->Probabilities().cpu(), host->Probabilities(), 1e-6, 1e-6))
        << RouterKindName(options.kind());
    EXPECT_TRUE(torch::allclose(device->EvalWeights().cpu(), host->EvalWeights(), 1e-6, 1e-6))
        << RouterKindName(options.kind());
  }
}
}  // namespace
}  // namespace skillgrid::skills
