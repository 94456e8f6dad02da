// Tests of the IBP prior, AdaMix consistency, optimiser groups, adaptation and introspection.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/torch.h>

#include "skills/introspection.h"
#include "skills/skill_linear.h"
#include "skills/training_helpers.h"
#include "test_util.h"
#include "tests/cuda_util.h"

namespace skillgrid::skills {
namespace {

using testing::Ids;

TEST(IbpPrior, MatchesAHandComputedExample) {
  // Z (T=3, S=4) = [[1,1,0,0],[1,0,0,1],[1,1,0,0]]: columns 0 (111), 1 (101), 3 (010); column 2 unused.
  // Histories are all distinct: sum lgamma(K_h + 1) = 0.
  // Active m = 3, 2, 1: [lgamma(1)+lgamma(3)] + [lgamma(2)+lgamma(2)] + [lgamma(3)+lgamma(1)] = 2 ln 2.
  const auto logits = torch::tensor({{4.0, 4.0, -4.0, -4.0}, {4.0, -4.0, -4.0, 4.0}, {4.0, 4.0, -4.0, -4.0}}).requires_grad_();
  const auto value = NegLogIbpPrior(logits);
  EXPECT_NEAR(value.item<double>(), -2 * std::log(2.0), 1e-5);
  // Two identical columns: K = 2 for that history adds lgamma(3) = ln 2.
  const auto twins = torch::tensor({{4.0, 4.0}, {-4.0, -4.0}});
  // m = 1, 1 with T = 2: 2 [lgamma(2) + lgamma(1)] = 0; minus ln 2! -> +ln 2.
  EXPECT_NEAR(NegLogIbpPrior(twins).item<double>(), std::log(2.0), 1e-5);
  // The alpha terms: + K+ ln a - a H_T - K+ ln T!.
  const double alpha = 5, harmonic = 1 + 0.5 + 1.0 / 3;
  IbpPriorOptions with_alpha;
  with_alpha.include_alpha_terms = true;
  with_alpha.alpha = alpha;
  EXPECT_NEAR(NegLogIbpPrior(logits, with_alpha).item<double>(),
              -(2 * std::log(2.0) + 3 * std::log(alpha) - alpha * harmonic - 3 * std::log(6.0)), 1e-5);
  value.backward();  // straight-through: gradient reaches the logits
  EXPECT_GT(logits.grad().abs().sum().item<double>(), 0);
}

TEST(AdaMixConsistency, IsSymmetricKlWithStopGradient) {
  torch::manual_seed(0);
  const auto a = torch::randn({4, 7}).requires_grad_(), b = torch::randn({4, 7}).requires_grad_();
  const auto loss = AdaMixConsistencyLoss(a, b);
  const auto p = torch::softmax(a, -1), q = torch::softmax(b, -1);
  const auto kl_pq = (p * (p.log() - q.log())).sum() / 4, kl_qp = (q * (q.log() - p.log())).sum() / 4;
  EXPECT_NEAR(loss.item<double>(), 0.5 * (kl_pq + kl_qp).item<double>(), 1e-5);
  EXPECT_NEAR(AdaMixConsistencyLoss(a, a).item<double>(), 0.0, 1e-6);
  // Gradient w.r.t. a comes only from KL(sg(q) || p): d/da = 0.5 (p - q) / batch.
  loss.backward();
  EXPECT_TRUE(torch::allclose(a.grad(), 0.5 * (p - q).detach() / 4, 1e-5, 1e-6));
}

TEST(OptimiserGroups, RoutingLogitsGetTheirOwnFasterGroupWithoutWeightDecay) {
  torch::manual_seed(1);
  SkillLinear layer(SkillLinearOptions(4, 4).routing(RouterOptions::Poly(3, 2)));
  const auto groups = MakeAdamWParamGroups(*layer, torch::optim::AdamWOptions(1e-3).weight_decay(0.01), 100.0);
  ASSERT_EQ(groups.size(), 2u);
  const auto& routing = static_cast<const torch::optim::AdamWOptions&>(groups[1].options());
  EXPECT_DOUBLE_EQ(routing.lr(), 0.1);
  EXPECT_DOUBLE_EQ(routing.weight_decay(), 0.0);
  EXPECT_EQ(groups[1].params().size(), 1u);
  EXPECT_TRUE(groups[1].params()[0].is_same(layer->router()->logits()));
  torch::optim::Adam adam(MakeAdamParamGroups(*layer, torch::optim::AdamOptions(1e-3), 10.0));
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamOptions&>(adam.param_groups()[1].options()).lr(), 1e-2);
}

TEST(Adaptation, AddTaskFreezeSkillsAndSwitchToMu) {
  torch::manual_seed(2);
  SkillLinear layer(SkillLinearOptions(4, 4).routing(RouterOptions::Mhr(3, 2, 2)).skills(SkillInventoryOptions::LowRank(2).zero_init(false)));
  EXPECT_EQ(AddTask(*layer), 3);
  EXPECT_EQ(layer->router()->n_tasks(), 4);
  layer->forward(torch::randn({2, 4}), Ids({3, 3}));  // the new task routes
  // MHR-z: only the routing logits train.
  FreezeAllButRouting(*layer);
  for (const auto& item : layer->named_parameters())
    EXPECT_EQ(item.value().requires_grad(), item.key() == "router.logits") << item.key();
  // Poly-mu: skills train, routing is the uniform average.
  SwitchToMu(*layer, /*freeze_base=*/true);
  EXPECT_EQ(layer->router()->kind(), RouterKind::kMu);
  EXPECT_TRUE(layer->skills()->lora_a().requires_grad());
  EXPECT_FALSE(layer->base()->weight.requires_grad());
  EXPECT_FALSE(layer->router()->logits().requires_grad());
  const auto x = torch::randn({3, 4});
  const auto expected = layer->base()->forward(x) + x.mm(layer->skills()->lora_a().mean(0)).mm(layer->skills()->lora_b().mean(0)) / 2;
  EXPECT_TRUE(torch::allclose(layer->forward(x, Ids({0, 1, 3})), expected, 1e-5, 1e-6));
}

TEST(Adaptation, AddUnseenTaskRoutesByTheMeanOfTheTrainedTasksOrUniformly) {
  torch::manual_seed(6);
  SkillLinear layer(SkillLinearOptions(4, 4).routing(RouterOptions::Mhr(3, 4, 2)).skills(SkillInventoryOptions::LowRank(2).zero_init(false)));
  {
    torch::NoGradGuard no_grad;
    layer->router()->logits().normal_(0.0, 2.0);  // distinct, far-from-uniform task rows
  }
  const auto trained = layer->router()->EvalWeights();  // (3, 2, 4)
  EXPECT_EQ(AddUnseenTask(*layer, UnseenTaskRouting::kMean), 3);
  EXPECT_TRUE(torch::allclose(layer->router()->EvalWeights()[3], trained.mean(0), 1e-5, 1e-5));
  EXPECT_EQ(AddUnseenTask(*layer, UnseenTaskRouting::kUniform), 4);
  EXPECT_TRUE(torch::allclose(layer->router()->EvalWeights()[4], torch::full({2, 4}, 0.25), 1e-5, 1e-5));
  // The uniform task's output is the Poly-mu (average-of-skills) layer's output.
  layer->eval();
  const auto x = torch::randn({3, 4});
  const auto uniform_out = layer->forward(x, Ids({4, 4, 4}));
  SwitchToMu(*layer);
  EXPECT_TRUE(torch::allclose(uniform_out, layer->forward(x, Ids({0, 1, 2})), 1e-5, 1e-5));

  // No routers: nothing to add, and every task id is as good as any other.
  torch::nn::Linear plain(4, 4);
  EXPECT_EQ(AddUnseenTask(*plain, UnseenTaskRouting::kMean), 0);
  EXPECT_EQ(ParseUnseenTaskRouting("uniform"), UnseenTaskRouting::kUniform);
  testing::ExpectThrowWith([] { ParseUnseenTaskRouting("average"); }, {"mean or uniform", "'average'"});
}

TEST(Introspection, MetricsAndJsonExport) {
  const auto binary = torch::tensor({{1.0, 0.0}, {0.0, 1.0}});
  const auto metrics = ComputeRoutingMetrics(binary);
  EXPECT_NEAR(metrics.discreteness, 0.0, 1e-6);
  EXPECT_NEAR(metrics.sparsity, 0.5, 1e-9);
  EXPECT_NEAR(metrics.usage, 1.0, 1e-6);
  const auto uncertain = ComputeRoutingMetrics(torch::full({3, 4}, 0.5));
  EXPECT_NEAR(uncertain.discreteness, 1.0, 1e-6);
  EXPECT_NEAR(ComputeRoutingMetrics(torch::tensor({{1.0, 0.0}, {1.0, 0.0}})).usage, 0.0, 1e-6);

  torch::manual_seed(3);
  SkillLinear layer(SkillLinearOptions(4, 4).routing(RouterOptions::Mhr(2, 3, 2)));
  const auto json = RoutingToJson(*layer, {"GoTo", "PickupLoc"});
  ASSERT_EQ(json["routers"].size(), 1u);
  const auto& router = json["routers"][0];
  EXPECT_EQ(router["name"], "router");
  EXPECT_EQ(router["kind"], "poly");
  EXPECT_EQ(router["tasks"][1], "PickupLoc");
  ASSERT_EQ(router["heads"].size(), 2u);
  EXPECT_EQ(router["heads"][0]["weights"].size(), 2u);
  EXPECT_EQ(router["heads"][0]["weights"][0].size(), 3u);
  double row_sum = 0;
  for (const auto& w : router["heads"][1]["weights"][0]) row_sum += w.get<double>();
  EXPECT_NEAR(row_sum, 1.0, 1e-6);
  EXPECT_NEAR(router["heads"][0]["discreteness"].get<double>(), 1.0, 1e-5);  // sigmoid(~0) = 0.5
}


TEST(IbpPrior_CUDA, DeviceLogitsGiveTheHostValueAndGradient) {
  // The prior reads the binarised allocation on the host and returns its value on the logits'
  // device.
  SKILLGRID_REQUIRE_CUDA();
  const auto host = torch::tensor({{4.0, 4.0, -4.0, -4.0}, {4.0, -4.0, -4.0, 4.0}, {4.0, 4.0, -4.0, -4.0}}).requires_grad_();
  const auto device = host.detach().to(at::kCUDA).requires_grad_();
  const auto value_host = NegLogIbpPrior(host), value_device = NegLogIbpPrior(device);
  EXPECT_EQ(value_device.device().type(), at::kCUDA);
  EXPECT_NEAR(value_device.item<double>(), value_host.item<double>(), 1e-5);
  value_host.backward();
  value_device.backward();
  EXPECT_TRUE(torch::allclose(device.grad().cpu(), host.grad(), 1e-5, 1e-5));
}
}  // namespace
}  // namespace skillgrid::skills
