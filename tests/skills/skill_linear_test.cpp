// Tests of SkillLinear: base equivalence, MHR/Poly, Private/Shared/mu/AdaMix semantics, export,
// finite-difference gradients, save/load and bad-use messages.
#include <gtest/gtest.h>

#include <sstream>

#include <torch/torch.h>

#include "skills/skill_linear.h"
#include "test_util.h"
#include "tests/cuda_util.h"

namespace skillgrid::skills {
namespace {

using testing::ExpectThrowWith;
using testing::Ids;

SkillLinear MakeLayer(int64_t in, int64_t out, RouterOptions routing, SkillInventoryOptions skills,
                      LowRankStrategy strategy = LowRankStrategy::kAuto) {
  return SkillLinear(SkillLinearOptions(in, out).routing(routing).skills(skills).low_rank_strategy(strategy));
}

TEST(SkillLinear, ZeroInitialisedSkillsStartAsTheBaseLayer) {
  torch::manual_seed(0);
  const auto x = torch::randn({10, 16});
  const auto tasks = torch::randint(4, {10}, torch::kLong);
  for (const auto& skills : {SkillInventoryOptions::LowRank(3), SkillInventoryOptions::Dense(),
                             SkillInventoryOptions::Sparse(0.2)}) {
    auto layer = MakeLayer(16, 12, RouterOptions::Poly(4, 5), skills);
    EXPECT_TRUE(torch::allclose(layer->forward(x, tasks), layer->base()->forward(x), 1e-6, 1e-6));
    layer->eval();
    EXPECT_TRUE(torch::allclose(layer->forward(x, tasks), layer->base()->forward(x), 1e-6, 1e-6));
  }
}

TEST(SkillLinear, MhrWithOneSplitEqualsPoly) {
  const auto x = torch::randn({12, 8});
  const auto tasks = torch::randint(3, {12}, torch::kLong);
  torch::manual_seed(5);
  auto poly = MakeLayer(8, 6, RouterOptions::Poly(3, 4), SkillInventoryOptions::LowRank(2).zero_init(false));
  torch::manual_seed(5);
  auto mhr = MakeLayer(8, 6, RouterOptions::Mhr(3, 4, 1), SkillInventoryOptions::LowRank(2).zero_init(false));
  torch::manual_seed(9);
  const auto y_poly = poly->forward(x, tasks);  // training mode: same noise from the same seed
  torch::manual_seed(9);
  EXPECT_TRUE(torch::equal(mhr->forward(x, tasks), y_poly));
}

TEST(SkillLinear, MhrMixesInputBlocksOfAAndOutputBlocksOfBPerHead) {
  torch::manual_seed(1);
  const int64_t in = 6, out = 4, heads = 2, skills = 3, rank = 2;
  auto layer = MakeLayer(in, out, RouterOptions::Mhr(2, skills, heads), SkillInventoryOptions::LowRank(rank).zero_init(false));
  layer->eval();
  const auto x = torch::randn({5, in});
  const int64_t task = 1;
  const auto w = layer->router()->EvalWeights()[task];  // (h, S)
  const auto a = layer->skills()->lora_a(), b = layer->skills()->lora_b();
  std::vector<at::Tensor> a_blocks, b_blocks;
  for (int64_t q = 0; q < heads; ++q) {
    const auto wq = w[q].view({skills, 1, 1});
    a_blocks.push_back((wq * a.narrow(1, q * in / heads, in / heads)).sum(0));
    b_blocks.push_back((wq * b.narrow(2, q * out / heads, out / heads)).sum(0));
  }
  const auto expected = layer->base()->forward(x) + x.mm(torch::cat(a_blocks, 0)).mm(torch::cat(b_blocks, 1)) / rank;
  EXPECT_TRUE(torch::allclose(layer->forward(x, Ids({1, 1, 1, 1, 1})), expected, 1e-5, 1e-6));
}

TEST(SkillLinear, MergedAndFactoredStrategiesAgree) {
  torch::manual_seed(2);
  auto merged = MakeLayer(8, 8, RouterOptions::Mhr(4, 3, 2), SkillInventoryOptions::LowRank(2).zero_init(false),
                          LowRankStrategy::kMerged);
  auto factored = MakeLayer(8, 8, RouterOptions::Mhr(4, 3, 2), SkillInventoryOptions::LowRank(2).zero_init(false),
                            LowRankStrategy::kFactored);
  testing::CopyState(*factored, *merged);
  merged->eval();
  factored->eval();
  const auto x = torch::randn({30, 8});
  const auto tasks = torch::randint(4, {30}, torch::kLong);
  EXPECT_TRUE(torch::allclose(merged->forward(x, tasks), factored->forward(x, tasks), 1e-5, 1e-6));
  // 3-D inputs (N, L, d): the task applies to every position of its row.
  const auto x3 = torch::randn({30, 5, 8});
  EXPECT_TRUE(torch::allclose(merged->forward(x3, tasks), factored->forward(x3, tasks), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(merged->forward(x3, tasks).select(1, 2), merged->forward(x3.select(1, 2), tasks), 1e-5, 1e-6));
}

TEST(SkillLinear, PrivateEqualsIndependentPerTaskAdapters) {
  torch::manual_seed(3);
  const int64_t rank = 2;
  auto layer = MakeLayer(6, 5, RouterOptions::Private(3), SkillInventoryOptions::LowRank(rank).zero_init(false));
  const auto x = torch::randn({9, 6});
  const auto tasks = Ids({0, 1, 2, 2, 1, 0, 0, 1, 2});
  const auto y = layer->forward(x, tasks);
  const auto a = layer->skills()->lora_a(), b = layer->skills()->lora_b();
  for (int64_t i = 0; i < 9; ++i) {
    const int64_t t = tasks[i].item<int64_t>();
    const auto expected = layer->base()->forward(x[i].unsqueeze(0)) + x[i].unsqueeze(0).mm(a[t]).mm(b[t]) / rank;
    EXPECT_TRUE(torch::allclose(y[i].unsqueeze(0), expected, 1e-5, 1e-6)) << "row " << i;
  }
}

TEST(SkillLinear, PrivateTaskLossSendsGradientOnlyToItsOwnSkill) {
  torch::manual_seed(4);
  auto layer = MakeLayer(6, 5, RouterOptions::Private(3), SkillInventoryOptions::LowRank(2).zero_init(false));
  const auto x = torch::randn({4, 6});
  layer->forward(x, Ids({1, 1, 1, 1})).pow(2).sum().backward();
  const auto grad_a = layer->skills()->lora_a().grad(), grad_b = layer->skills()->lora_b().grad();
  for (int64_t s = 0; s < 3; ++s) {
    EXPECT_EQ(grad_a[s].abs().sum().item<double>() > 0, s == 1) << "skill " << s;
    EXPECT_EQ(grad_b[s].abs().sum().item<double>() > 0, s == 1) << "skill " << s;
  }
}

TEST(SkillLinear, SharedEqualsOneAdapterForEveryTask) {
  torch::manual_seed(5);
  auto layer = MakeLayer(6, 5, RouterOptions::Shared(4), SkillInventoryOptions::LowRank(2).zero_init(false));
  const auto x = torch::randn({8, 6});
  const auto expected = layer->base()->forward(x) + x.mm(layer->skills()->lora_a()[0]).mm(layer->skills()->lora_b()[0]) / 2;
  EXPECT_TRUE(torch::allclose(layer->forward(x, Ids({0, 1, 2, 3, 3, 2, 1, 0})), expected, 1e-5, 1e-6));
}

TEST(SkillLinear, MuEqualsTheAverageOfTheSkills) {
  torch::manual_seed(6);
  auto layer = MakeLayer(6, 5, RouterOptions::Mu(3, 4), SkillInventoryOptions::LowRank(2).zero_init(false));
  const auto x = torch::randn({7, 6});
  const auto a = layer->skills()->lora_a().mean(0), b = layer->skills()->lora_b().mean(0);
  const auto expected = layer->base()->forward(x) + x.mm(a).mm(b) / 2;
  EXPECT_TRUE(torch::allclose(layer->forward(x, Ids({0, 1, 2, 0, 1, 2, 0})), expected, 1e-5, 1e-6));
}

TEST(SkillLinear, AdaMixTrainsOneRandomModulePerCallAndMergesByAveragingAtEval) {
  torch::manual_seed(7);
  const int64_t modules = 4, rank = 2;
  auto layer = MakeLayer(6, 5, RouterOptions::AdaMix(2, modules), SkillInventoryOptions::LowRank(rank).zero_init(false).share_b(true));
  ASSERT_EQ(layer->skills()->lora_b().size(0), 1);  // shared up-projection
  const auto x = torch::randn({5, 6});
  const auto tasks = Ids({0, 1, 0, 1, 1});
  const auto a = layer->skills()->lora_a(), b = layer->skills()->lora_b()[0];
  // Training: the output is exactly one module's adapter, the same for every row.
  const auto y = layer->forward(x, tasks);
  bool matched = false;
  for (int64_t m = 0; m < modules; ++m)
    matched = matched || torch::allclose(y, layer->base()->forward(x) + x.mm(a[m]).mm(b) / rank, 1e-5, 1e-6);
  EXPECT_TRUE(matched);
  // Eval: merged weights = averaged A (and the shared B); cached under no-grad.
  layer->eval();
  torch::NoGradGuard no_grad;
  const auto merged = layer->base()->forward(x) + x.mm(a.mean(0)).mm(b) / rank;
  EXPECT_TRUE(torch::allclose(layer->forward(x, tasks), merged, 1e-5, 1e-6));
  // An update (here in eval mode) must not leave the merge cache stale.
  layer->skills()->lora_a().add_(1.0);
  const auto updated = layer->base()->forward(x) + x.mm(layer->skills()->lora_a().mean(0)).mm(b) / rank;
  EXPECT_TRUE(torch::allclose(layer->forward(x, tasks), updated, 1e-5, 1e-6));
  layer->train();
  layer->eval();
  EXPECT_TRUE(torch::allclose(layer->forward(x, tasks), updated, 1e-5, 1e-6));
}

TEST(SkillLinear, MergedExportEqualsRoutedForwardAtEval) {
  torch::manual_seed(8);
  const auto x = torch::randn({11, 8});
  for (const auto& routing : {RouterOptions::Poly(3, 4), RouterOptions::Mhr(3, 4, 2), RouterOptions::Private(3),
                              RouterOptions::Mu(3, 4), RouterOptions::AdaMix(3, 4)}) {
    for (const auto& skills : {SkillInventoryOptions::LowRank(3), SkillInventoryOptions::Dense(),
                               SkillInventoryOptions::Sparse(0.3).bias_skills(true)}) {
      auto layer = MakeLayer(8, 6, routing, SkillInventoryOptions(skills).zero_init(false));
      {
        torch::NoGradGuard no_grad;
        for (auto& p : layer->router()->parameters()) p.uniform_(-3, 3);  // a decisive allocation
        if (skills.bias_skills()) layer->skills()->bias_delta().normal_();
      }
      layer->eval();
      for (int64_t task = 0; task < 3; ++task) {
        const auto routed = layer->forward(x, torch::full({11}, task, torch::kLong));
        auto plain = layer->ExportTask(task);
        EXPECT_TRUE(torch::allclose(plain->forward(x), routed, 1e-5, 1e-5))
            << RouterKindName(routing.kind()) << "/" << InventoryKindName(skills.kind()) << " task " << task;
      }
    }
  }
}

// Central finite differences of a scalar loss w.r.t. every entry of every parameter, in double.
void ExpectGradientsMatchFiniteDifferences(SkillLinear& layer, const at::Tensor& x, const at::Tensor& tasks) {
  const auto batch = TaskBatch::FromTaskIds(tasks);
  const auto probe = torch::randn({x.size(0), layer->options.out_features()}, torch::kDouble);
  testing::ExpectParameterGradientsMatchFiniteDifferences(*layer,
                                                          [&] { return (layer->forward(x, batch) * probe).sum(); });
}

TEST(SkillLinear, MaskedStrategyAgreesWithMergedOnMixedBatches) {
  // One routing head: the masked form must give every row its own task's layer, for 2-D and 3-D
  // inputs and rows in any task order, and the same gradients.
  torch::manual_seed(4);
  auto merged = MakeLayer(6, 5, RouterOptions::Poly(4, 3), SkillInventoryOptions::LowRank(2).zero_init(false),
                          LowRankStrategy::kMerged);
  auto masked = MakeLayer(6, 5, RouterOptions::Poly(4, 3), SkillInventoryOptions::LowRank(2).zero_init(false),
                          LowRankStrategy::kMasked);
  testing::CopyState(*masked, *merged);
  merged->eval();
  masked->eval();
  const auto tasks = Ids({3, 0, 3, 1, 0, 2, 1});
  for (const auto& shape : {std::vector<int64_t>{7, 6}, std::vector<int64_t>{7, 4, 6}}) {
    const auto x = torch::randn(shape);
    EXPECT_TRUE(torch::allclose(merged->forward(x, tasks), masked->forward(x, tasks), 1e-5, 1e-6));
    merged->zero_grad();
    masked->zero_grad();
    const auto x_merged = x.clone().requires_grad_(true), x_masked = x.clone().requires_grad_(true);
    merged->forward(x_merged, tasks).pow(2).sum().backward();
    masked->forward(x_masked, tasks).pow(2).sum().backward();
    EXPECT_TRUE(torch::allclose(x_merged.grad(), x_masked.grad(), 1e-4, 1e-5)) << "input " << x.sizes();
    const auto g_merged = merged->named_parameters(), g_masked = masked->named_parameters();
    for (const auto& item : g_merged) {
      ASSERT_TRUE(item.value().grad().defined()) << item.key();
      EXPECT_TRUE(torch::allclose(item.value().grad(), g_masked[item.key()].grad(), 1e-4, 1e-5))
          << item.key() << " " << x.sizes();
    }
  }
}

TEST(SkillLinear, PreparedLayerWithoutMatmulFormKeepsItsOneRoutingDraw) {
  // Layers with no matmul form (several MHR heads, dense skills) re-run at every Apply; in
  // training mode they must reuse the routing drawn at Prepare, as a recurrence expects.
  torch::manual_seed(6);
  const auto tasks = Ids({0, 2, 1, 2, 0});
  const auto x = torch::randn({5, 4});
  for (auto layer : {MakeLayer(4, 6, RouterOptions::Mhr(3, 3, 2), SkillInventoryOptions::LowRank(2).zero_init(false)),
                     MakeLayer(4, 6, RouterOptions::Poly(3, 3), SkillInventoryOptions::Dense().zero_init(false))}) {
    layer->train();
    const auto batch = TaskBatch::FromTaskIds(tasks);
    const PreparedSkillLinear prepared = layer->Prepare(batch);
    ASSERT_FALSE(prepared.has_matmul_form());
    EXPECT_TRUE(torch::equal(prepared.Apply(x), prepared.Apply(x)));
    EXPECT_FALSE(torch::allclose(layer->forward(x, batch), layer->forward(x, batch)))
        << "forward() should draw new routing each call in training mode";
    layer->eval();
    EXPECT_TRUE(torch::allclose(layer->Prepare(batch).Apply(x), layer->forward(x, batch), 1e-6, 1e-6));
  }
}

TEST(SkillLinear, GradientsMatchFiniteDifferences) {
  torch::manual_seed(9);
  const auto x = torch::randn({7, 4}, torch::kDouble);
  const auto tasks = Ids({0, 2, 1, 2, 0, 0, 2});
  for (const auto& skills : {SkillInventoryOptions::LowRank(2), SkillInventoryOptions::Dense(),
                             SkillInventoryOptions::Sparse(0.5).bias_skills(true)}) {
    for (auto strategy : {LowRankStrategy::kMerged, LowRankStrategy::kFactored}) {
      if (strategy == LowRankStrategy::kFactored && skills.kind() != InventoryKind::kLowRank) continue;
      // Plain-sigmoid training routing is deterministic, so finite differences apply to it too.
      auto layer = MakeLayer(4, 4, RouterOptions::Mhr(3, 3, 2).relaxed_bernoulli(false),
                             SkillInventoryOptions(skills).zero_init(false), strategy);
      layer->to(torch::kDouble);
      ExpectGradientsMatchFiniteDifferences(layer, x, tasks);
    }
  }
}

TEST(SkillLinear, MaskedFormGradientsMatchFiniteDifferencesForInputAndEveryParameter) {
  // The masked form and its mixing run as fused autograd nodes with hand-written backward passes:
  // check them against finite differences, with and without bias, on mixed and one-task batches,
  // and on rows in long one-task runs (the per-run products; runs in non-ascending task order).
  torch::manual_seed(12);
  std::vector<int64_t> runs(8, 0);
  runs.insert(runs.end(), 9, 2);
  runs.insert(runs.end(), 8, 1);
  for (const bool bias : {true, false}) {
    for (const auto& ids : {std::vector<int64_t>{2, 0, 1, 2, 0, 0}, std::vector<int64_t>{1, 1, 1}, runs}) {
      const auto tasks = Ids(ids);
      auto layer = SkillLinear(SkillLinearOptions(5, 3)
                                   .bias(bias)
                                   .routing(RouterOptions::Poly(3, 4).relaxed_bernoulli(false))
                                   .skills(SkillInventoryOptions::LowRank(2).zero_init(false))
                                   .low_rank_strategy(LowRankStrategy::kMasked));
      layer->to(torch::kDouble);
      // Rows with a stride wider than the row (a column slice), as the heads read the memory.
      const auto x = torch::randn({tasks.size(0), 8}, torch::kDouble).narrow(1, 1, 5);
      ExpectGradientsMatchFiniteDifferences(layer, x, tasks);
      // The input's gradient.
      const auto batch = TaskBatch::FromTaskIds(tasks);
      const auto probe = torch::randn({x.size(0), 3}, torch::kDouble);
      const auto xg = x.clone().requires_grad_(true);
      (layer->forward(xg, batch) * probe).sum().backward();
      torch::NoGradGuard no_grad;
      for (int64_t i = 0; i < x.size(0); ++i) {
        for (int64_t j = 0; j < x.size(1); ++j) {
          const double saved = x[i][j].item<double>(), h = 1e-6;
          x[i][j] = saved + h;
          const double up = (layer->forward(x, batch) * probe).sum().item<double>();
          x[i][j] = saved - h;
          const double down = (layer->forward(x, batch) * probe).sum().item<double>();
          x[i][j] = saved;
          EXPECT_NEAR(xg.grad()[i][j].item<double>(), (up - down) / (2 * h), 1e-6)
              << "x[" << i << "][" << j << "]";
        }
      }
    }
  }
}

TEST(SkillLinear, RowsInOneTaskRunsGiveTheSameResultsAsInterleavedRows) {
  // Rows grouped in long one-task runs take the per-run products, interleaved rows the dense
  // masked ones: the same rows in either order give the same outputs and gradients.
  torch::manual_seed(13);
  const int64_t n = 48;
  const auto grouped_tasks = torch::div(torch::arange(n, torch::kLong) * 3, n, "floor");  // 16 rows per task
  const auto order = torch::randperm(n, torch::kLong);  // interleaves the tasks
  auto layer = SkillLinear(SkillLinearOptions(6, 5)
                               .routing(RouterOptions::Poly(3, 4).relaxed_bernoulli(false))
                               .skills(SkillInventoryOptions::LowRank(2).zero_init(false))
                               .low_rank_strategy(LowRankStrategy::kMasked));
  layer->to(torch::kDouble);
  const auto x = torch::randn({n, 6}, torch::kDouble);
  const auto probe = torch::randn({n, 5}, torch::kDouble);
  auto run = [&](const at::Tensor& rows) {
    layer->zero_grad();
    const auto xg = x.index_select(0, rows).clone().requires_grad_(true);
    const auto y = layer->forward(xg, TaskBatch::FromTaskIds(grouped_tasks.index_select(0, rows)));
    (y * probe.index_select(0, rows)).sum().backward();
    std::vector<at::Tensor> out = {at::empty_like(y).index_copy_(0, rows, y.detach()),
                                   at::empty_like(x).index_copy_(0, rows, xg.grad())};
    for (const auto& p : layer->parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    return out;
  };
  const auto grouped = run(torch::arange(n, torch::kLong));
  const auto interleaved = run(order);
  ASSERT_EQ(grouped.size(), interleaved.size());
  for (size_t i = 0; i < grouped.size(); ++i) {
    EXPECT_TRUE(torch::allclose(grouped[i], interleaved[i], 1e-10, 1e-12)) << "tensor " << i;
  }
  EXPECT_GT(grouped[1].abs().sum().item<double>(), 0.0);  // the input gradient is not trivially zero
}

TEST(SkillLinear, SaveLoadRoundTripReproducesOutputsExactly) {
  torch::manual_seed(10);
  const auto x = torch::randn({6, 8});
  const auto tasks = Ids({0, 1, 2, 0, 1, 2});
  for (const auto& skills : {SkillInventoryOptions::LowRank(2), SkillInventoryOptions::Sparse(0.2)}) {
    auto saved = MakeLayer(8, 4, RouterOptions::Poly(3, 4), SkillInventoryOptions(skills).zero_init(false));
    saved->eval();
    std::stringstream stream;
    torch::save(saved, stream);
    torch::manual_seed(99);  // a different init and sparse mask until loaded
    auto loaded = MakeLayer(8, 4, RouterOptions::Poly(3, 4), SkillInventoryOptions(skills).zero_init(false));
    torch::load(loaded, stream);
    loaded->eval();
    EXPECT_TRUE(torch::equal(saved->forward(x, tasks), loaded->forward(x, tasks)));
  }
}

TEST(SkillLinear, BadUseMessagesPrintTheValues) {
  torch::manual_seed(11);
  auto layer = MakeLayer(8, 4, RouterOptions::Poly(3, 4), SkillInventoryOptions::LowRank(2));
  ExpectThrowWith([&] { layer->forward(torch::randn({2, 8}), Ids({0, 3})); }, {"task id 3", "3 tasks"});
  ExpectThrowWith([&] { layer->forward(torch::randn({2, 8}), Ids({0, -1})); }, {"-1"});
  ExpectThrowWith([&] { layer->forward(torch::randn({2, 7}), Ids({0, 1})); }, {"[2, 7]", "in_features=8"});
  ExpectThrowWith([&] { layer->forward(torch::randn({3, 8}), Ids({0, 1})); }, {"[3, 8]", "2 rows"});
  ExpectThrowWith([&] { MakeLayer(8, 6, RouterOptions::Mhr(3, 4, 4), SkillInventoryOptions::LowRank(2)); },
                  {"n_splits=4", "in_features=8", "out_features=6"});
  ExpectThrowWith([&] { layer->ExportTask(5); }, {"task id 5", "3 tasks"});
}


TEST(SkillLinear_CUDA, EveryRouterAndInventoryMatchesTheCpuLayerForwardBackwardAndExport) {
  // The same layer on the host and on the device: CPU-only kernels (the BLAS run products, the
  // side-by-side mixing) must hand over to ATen there, and host-built router weights (Mu, AdaMix)
  // must meet the skills on the device.
  SKILLGRID_REQUIRE_CUDA();
  using cuda_test::RelativeMaxError;
  const at::Device cuda(at::kCUDA);
  torch::manual_seed(21);
  const auto x = torch::randn({13, 8});
  const auto tasks = Ids({2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 1, 0, 2});
  const auto probe = torch::randn({13, 6});
  for (const auto& routing : {RouterOptions::Poly(3, 4), RouterOptions::Mhr(3, 4, 2), RouterOptions::Shared(3),
                              RouterOptions::Private(3), RouterOptions::Mu(3, 4), RouterOptions::AdaMix(3, 4)}) {
    for (const auto& skills : {SkillInventoryOptions::LowRank(3), SkillInventoryOptions::Dense(),
                               SkillInventoryOptions::Sparse(0.3).bias_skills(true)}) {
      const std::string name = std::string(RouterKindName(routing.kind())) + "/" + InventoryKindName(skills.kind());
      auto host = MakeLayer(8, 6, routing, SkillInventoryOptions(skills).zero_init(false));
      {
        torch::NoGradGuard no_grad;
        for (auto& p : host->router()->parameters()) p.uniform_(-3, 3);
        if (skills.bias_skills()) host->skills()->bias_delta().normal_();
      }
      auto device = MakeLayer(8, 6, routing, SkillInventoryOptions(skills).zero_init(false));
      testing::CopyState(*device, *host);
      device->to(cuda);
      // Eval: no routing noise, which the two devices would draw from different generators.
      host->eval();
      device->eval();
      const auto run = [&](SkillLinear& layer, const at::Device& where) {
        layer->zero_grad();
        // detach: on the host x.to(kCPU) is x itself, which must not come to require grad.
        const auto xi = x.to(where).detach().requires_grad_();
        const auto y = layer->forward(xi, TaskBatch::FromTaskIds(tasks.to(where)));
        (y * probe.to(where)).sum().backward();
        return std::make_pair(y, xi.grad());
      };
      const auto [y_host, dx_host] = run(host, at::kCPU);
      const auto [y_device, dx_device] = run(device, cuda);
      EXPECT_EQ(y_device.device().type(), at::kCUDA) << name;
      EXPECT_LE(RelativeMaxError(y_device, y_host), 1e-4) << name;
      EXPECT_LE(RelativeMaxError(dx_device, dx_host), 1e-4) << name;
      auto host_params = host->named_parameters();
      for (const auto& item : device->named_parameters()) {
        const at::Tensor g = item.value().grad(), ref = host_params[item.key()].grad();
        ASSERT_EQ(g.defined(), ref.defined()) << name << " " << item.key();
        if (g.defined()) {
          EXPECT_LE(RelativeMaxError(g, ref), 1e-4) << name << " " << item.key();
        }
      }
      for (int64_t task = 0; task < 3; ++task) {
        torch::NoGradGuard no_grad;
        auto plain = device->ExportTask(task);
        EXPECT_LE(RelativeMaxError(plain->forward(x.to(cuda)), host->forward(x, torch::full({13}, task, torch::kLong))),
                  1e-4)
            << name << " task " << task;
      }
    }
  }
  // AdaMix in training picks one module per call from the host generator: the same seed gives
  // the same picks, and so the same outputs, on both devices.
  auto host = MakeLayer(8, 6, RouterOptions::AdaMix(3, 4), SkillInventoryOptions::LowRank(3).zero_init(false));
  auto device = MakeLayer(8, 6, RouterOptions::AdaMix(3, 4), SkillInventoryOptions::LowRank(3).zero_init(false));
  testing::CopyState(*device, *host);
  device->to(cuda);
  for (int call = 0; call < 4; ++call) {
    torch::manual_seed(100 + call);
    const auto y_host = host->forward(x, tasks);
    torch::manual_seed(100 + call);
    const auto y_device = device->forward(x.to(cuda), tasks.to(cuda));
    EXPECT_LE(RelativeMaxError(y_device, y_host), 1e-4) << "call " << call;
  }
}
}  // namespace
}  // namespace skillgrid::skills
