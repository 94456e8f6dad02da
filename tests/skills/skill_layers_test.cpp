// Tests of SkillConv2d, SkillEmbedding, SkillLSTMCell, SkillGRUCell and shared routers.
#include <array>

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "skills/skill_conv_embedding.h"
#include "skills/skill_rnn_cells.h"
#include "skills/training_helpers.h"
#include "skills/winograd_conv.h"
#include "skills/winograd_conv_fp32.h"
#include "test_util.h"

namespace skillgrid::skills {
namespace {

using testing::ExpectThrowWith;
using testing::Ids;

void Randomise(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const auto& name = item.key();
    if (name.find("logits") != std::string::npos) item.value().uniform_(-3, 3);
    else if (name.find("skills.") != std::string::npos) item.value().normal_(0, 0.3);
  }
}

TEST(SkillConv2d, StartsAsBaseAndExportEqualsRoutedForward) {
  torch::manual_seed(0);
  const auto x = torch::randn({6, 4, 5, 5});
  const auto tasks = Ids({0, 1, 2, 1, 0, 2});
  for (const auto& skills : {SkillInventoryOptions::LowRank(2), SkillInventoryOptions::Dense(), SkillInventoryOptions::Sparse(0.2)}) {
    SkillConv2d conv(SkillConv2dOptions(4, 6, 3).padding(1).stride(2).skills(skills).routing(RouterOptions::Mhr(3, 3, 2)));
    EXPECT_TRUE(torch::allclose(conv->forward(x, TaskBatch::FromTaskIds(tasks)), conv->base()->forward(x), 1e-5, 1e-6));
    Randomise(*conv);
    conv->eval();
    const auto routed = conv->forward(x, TaskBatch::FromTaskIds(tasks));
    for (int64_t i = 0; i < 6; ++i) {
      auto plain = conv->ExportTask(tasks[i].item<int64_t>());
      EXPECT_TRUE(torch::allclose(plain->forward(x.narrow(0, i, 1)), routed.narrow(0, i, 1), 1e-5, 1e-5)) << "row " << i;
    }
  }
  ExpectThrowWith([] { SkillConv2d(SkillConv2dOptions(3, 6, 3).routing(RouterOptions::Mhr(2, 2, 2))); },
                  {"n_splits=2", "in_channels=3"});
  SkillConv2d conv(SkillConv2dOptions(4, 6, 3).routing(RouterOptions::Poly(3, 2)));
  ExpectThrowWith([&] { conv->forward(torch::randn({2, 3, 5, 5}), TaskBatch::FromTaskIds(Ids({0, 1}))); }, {"[2, 3, 5, 5]"});
}

TEST(SkillConv2d, GradientsEqualAPerRowReferenceForMixedTaskOrder) {
  // The per-task-block convolution has a hand-written backward: the gradients of input, base,
  // skills and routing logits must equal plain autograd through the one-row (single-task) path.
  torch::manual_seed(3);
  SkillConv2d conv(SkillConv2dOptions(3, 4, 3).padding(1).skills(SkillInventoryOptions::LowRank(2)).routing(
      RouterOptions::Poly(3, 3)));
  Randomise(*conv);
  conv->to(torch::kDouble);
  conv->eval();  // deterministic routing, still differentiable in the logits
  const auto x = torch::randn({5, 3, 4, 4}, torch::kDouble).requires_grad_();
  const auto tasks = Ids({2, 0, 2, 1, 0});
  const auto weights = torch::randn({5, 4, 4, 4}, torch::kDouble);
  const auto params = conv->parameters();
  std::vector<at::Tensor> inputs = {x};
  inputs.insert(inputs.end(), params.begin(), params.end());
  const auto ours = torch::autograd::grad({(conv->forward(x, TaskBatch::FromTaskIds(tasks)) * weights).sum()}, inputs,
                                          {}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  at::Tensor loss = torch::zeros({}, torch::kDouble);
  for (int64_t i = 0; i < 5; ++i) {  // one row at a time: the single-task path, plain autograd
    const auto row = conv->forward(x.narrow(0, i, 1), TaskBatch::FromTaskIds(tasks.narrow(0, i, 1)));
    loss = loss + (row * weights.narrow(0, i, 1)).sum();
  }
  const auto ref = torch::autograd::grad({loss}, inputs, {}, false, false, /*allow_unused=*/true);
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t k = 0; k < ours.size(); ++k) {
    // An input one side does not use has no gradient there; the other side's must then be 0.
    const at::Tensor a = ours[k].defined() ? ours[k] : torch::zeros_like(inputs[k]);
    const at::Tensor b = ref[k].defined() ? ref[k] : torch::zeros_like(inputs[k]);
    EXPECT_TRUE(torch::allclose(a, b, 1e-9, 1e-10)) << "input " << k << " " << a << " vs " << b;
  }
}

TEST(SkillConv2d, Bf16PrecisionAgreesWithFp32UpToBf16RoundingWithFp32ParameterGradients) {
  // Mixed precision rounds input and kernels to bf16 and returns a bf16 output;
  // against fp32 on the same layer it must agree to bf16's ~3 significant digits, forward and
  // backward, for mixed-task and single-task batches, and leave parameter gradients fp32.
  // (32 channels take the AMX weight gradient where the CPU has it, 16 and 8 oneDNN's.)
  torch::manual_seed(4);
  for (const auto& [in, out] : {std::pair<int64_t, int64_t>{16, 8}, {32, 32}}) {
    SkillConv2d conv(SkillConv2dOptions(in, out, 3).padding(1).skills(SkillInventoryOptions::LowRank(2)).routing(
        RouterOptions::Poly(3, 3)));
    Randomise(*conv);
    conv->eval();  // deterministic routing
    const auto params = conv->parameters();
    for (const auto& tasks : {Ids({2, 0, 2, 1, 0, 1}), Ids({1, 1, 1, 1, 1, 1})}) {
      const auto x = torch::randn({6, in, 5, 5}).requires_grad_();
      const auto weights = torch::randn({6, out, 5, 5});
      std::vector<at::Tensor> inputs = {x};
      inputs.insert(inputs.end(), params.begin(), params.end());
      const auto batch = TaskBatch::FromTaskIds(tasks);
      conv->options.precision(ConvPrecision::kFloat32);
      const at::Tensor ref = conv->forward(x, batch);
      const auto ref_grads = torch::autograd::grad({(ref * weights).sum()}, inputs, {}, false, false, true);
      conv->options.precision(ConvPrecision::kBFloat16);
      const at::Tensor ours = conv->forward(x, batch);
      EXPECT_EQ(ours.scalar_type(), at::kBFloat16);
      const double scale = ref.abs().max().item<double>();
      // Winograd tiles larger than 2x2 round larger transformed values (winograd_conv.h): their
      // worst element is off by up to ~3 % (2x4) and ~6 % (4x4) of the largest output.
      const bool winograd = WinogradConvPreferred() && in % 32 == 0 && out % 32 == 0;
      const double tolerance = !winograd                                       ? 0.02
                               : WinogradBf16Tile() == WinogradTile::k4x4 ? 0.08
                               : WinogradBf16Tile() == WinogradTile::k2x4 ? 0.035
                                                                          : 0.02;
      EXPECT_LE((ours.to(at::kFloat) - ref).abs().max().item<double>(), tolerance * scale);
      {
        // Without autograd a mixed batch takes base + stacked low-rank convolutions instead.
        torch::NoGradGuard no_grad;
        const at::Tensor fast = conv->forward(x, batch);
        EXPECT_EQ(fast.scalar_type(), at::kBFloat16);
        EXPECT_LE((fast.to(at::kFloat) - ref).abs().max().item<double>(), tolerance * scale);
      }
      const auto grads = torch::autograd::grad({(ours.to(at::kFloat) * weights).sum()}, inputs, {}, false, false, true);
      for (size_t k = 0; k < inputs.size(); ++k) {
        ASSERT_EQ(grads[k].defined(), ref_grads[k].defined()) << "input " << k;
        if (!grads[k].defined()) continue;
        EXPECT_EQ(grads[k].scalar_type(), at::kFloat) << "input " << k;
        // The routing logits' gradient is a difference of near-equal dot products (the normalised
        // weights sum to 1), so bf16 rounding of its terms weighs more on it: 5.8 % of its norm on
        // an AVX2-only CPU (oneDNN without native bf16), under 3 % with AVX512-BF16. A wrong
        // gradient is off by O(1).
        const double relative = inputs[k].is_same(conv->router()->logits()) ? 0.1 : 0.03;
        EXPECT_LE((grads[k] - ref_grads[k]).norm().item<double>(), relative * ref_grads[k].norm().item<double>() + 1e-4)
            << "input " << k << " (" << in << " -> " << out << " channels)";
      }
    }
  }
  EXPECT_EQ(ParseConvPrecision("bf16"), ConvPrecision::kBFloat16);
  EXPECT_STREQ(ConvPrecisionName(ParseConvPrecision("fp32")), "fp32");
  ExpectThrowWith([] { ParseConvPrecision("fp16"); }, {"unknown precision 'fp16' (valid: fp32, bf16)"});
}

TEST(SkillConv2d, LowRankKernelGradientsMatchFiniteDifferences) {
  // Per-task kernels W + (A_t B_t)^T are built by fused nodes with hand-written backward passes;
  // every parameter's gradient (base, skills, routing logits) must match central differences.
  torch::manual_seed(5);
  SkillConv2d conv(SkillConv2dOptions(2, 3, 2).skills(SkillInventoryOptions::LowRank(2)).routing(
      RouterOptions::Poly(3, 3)));
  Randomise(*conv);
  conv->to(torch::kDouble);
  conv->eval();  // deterministic routing, still differentiable in the logits
  const auto x = torch::randn({4, 2, 3, 3}, torch::kDouble);
  for (const auto& ids : {std::vector<int64_t>{2, 0, 2, 1}, std::vector<int64_t>{1, 1, 1, 1}}) {
    const auto batch = TaskBatch::FromTaskIds(Ids(ids));
    const auto probe = torch::randn({4, 3, 2, 2}, torch::kDouble);
    testing::ExpectParameterGradientsMatchFiniteDifferences(
        *conv, [&] { return (conv->forward(x, batch) * probe).sum(); });
  }
}

TEST(SkillConv2d, BatchKernelsGiveOneKernelPerDistinctTaskOrOneForAll) {
  torch::manual_seed(4);
  SkillConv2d conv(SkillConv2dOptions(3, 5, 2).skills(SkillInventoryOptions::LowRank(2)).routing(RouterOptions::Poly(4, 3)));
  Randomise(*conv);
  conv->eval();
  const auto mixed = TaskBatch::FromTaskIds(Ids({3, 1, 3, 0}));  // distinct tasks 0, 1, 3
  const auto [kernels, biases] = conv->BatchKernels(mixed);
  ASSERT_EQ(kernels.sizes(), (std::vector<int64_t>{3, 5, 3, 2, 2}));
  ASSERT_EQ(biases.sizes(), (std::vector<int64_t>{3, 5}));
  const std::array<int64_t, 3> order = {0, 1, 3};
  for (size_t u = 0; u < order.size(); ++u) {
    const auto [kernel, bias] = conv->EffectiveWeights(order[u]);
    EXPECT_TRUE(torch::allclose(kernels[static_cast<int64_t>(u)], kernel, 1e-6, 1e-6)) << "task " << order[u];
    EXPECT_TRUE(torch::allclose(biases[static_cast<int64_t>(u)], bias, 1e-6, 1e-6)) << "task " << order[u];
  }
  const auto [single, single_bias] = conv->BatchKernels(TaskBatch::FromTaskIds(Ids({2, 2})));
  EXPECT_EQ(single.size(0), 1);
  EXPECT_TRUE(torch::allclose(single[0], conv->EffectiveWeights(2).first, 1e-6, 1e-6));
  // A task-independent router (mu) serves every row with one kernel, whatever the tasks.
  SkillConv2d mu(SkillConv2dOptions(3, 5, 2).skills(SkillInventoryOptions::LowRank(2)).routing(RouterOptions::Mu(4, 3)));
  EXPECT_EQ(mu->BatchKernels(mixed).first.size(0), 1);
}

TEST(SkillConv2d, WithoutAutogradThePatchFormEqualsPerTaskConvolutions) {
  // Under NoGradGuard a one-head low-rank layer runs as matmuls over its im2col patches; each row
  // must still equal its own task's exported convolution (padding and stride included).
  torch::manual_seed(4);
  for (const auto& geometry : {std::array<int64_t, 3>{2, 1, 0}, std::array<int64_t, 3>{3, 2, 1}}) {
    SkillConv2d conv(SkillConv2dOptions(3, 5, geometry[0])
                         .stride(geometry[1])
                         .padding(geometry[2])
                         .skills(SkillInventoryOptions::LowRank(2))
                         .routing(RouterOptions::Poly(3, 3)));
    Randomise(*conv);
    conv->eval();
    const auto x = torch::randn({7, 3, 7, 7});
    const auto tasks = Ids({2, 0, 2, 1, 0, 1, 1});
    at::Tensor patched;
    {
      torch::NoGradGuard no_grad;
      patched = conv->forward(x, TaskBatch::FromTaskIds(tasks));
    }
    EXPECT_TRUE(torch::allclose(patched, conv->forward(x, TaskBatch::FromTaskIds(tasks)), 1e-5, 1e-5));
    for (int64_t i = 0; i < 7; ++i) {
      torch::NoGradGuard no_grad;
      auto plain = conv->ExportTask(tasks[i].item<int64_t>());
      EXPECT_TRUE(torch::allclose(plain->forward(x.narrow(0, i, 1)), patched.narrow(0, i, 1), 1e-5, 1e-5))
          << "kernel " << geometry[0] << " row " << i;
    }
  }
}

TEST(SkillConv2d, Fp32WinogradBlocksRunChannelsLastAndMatchTheDirectConvolution) {
  // With fp32 Winograd preferred (the AVX2 default), a batch of task blocks (20, 17 and 3 rows)
  // runs as one blocked Winograd call, returns a channels-last output and takes a channels-last
  // gradient, so the ops between convolutions keep that layout; values and every gradient equal
  // the direct (oneDNN) path's, also for the block of 3 rows, too small to run alone.
  torch::manual_seed(6);
  SkillConv2d conv(SkillConv2dOptions(16, 16, 3).padding(1).skills(SkillInventoryOptions::LowRank(2)).routing(
      RouterOptions::Poly(3, 3)));
  Randomise(*conv);
  conv->eval();  // deterministic routing, still differentiable in the logits
  std::vector<int64_t> ids(20, 0);
  ids.insert(ids.end(), 17, 1);
  ids.insert(ids.end(), 3, 2);
  const auto tasks = Ids(ids);
  const auto x = torch::randn({40, 16, 7, 7});
  const auto weights = torch::randn({40, 16, 7, 7});
  const auto params = conv->parameters();
  struct Result {
    at::Tensor y;
    std::vector<at::Tensor> grads;
  };
  auto run = [&](bool winograd) {
    const ScopedWinogradFp32Preference preference(winograd);
    const auto xi = x.clone().requires_grad_();
    std::vector<at::Tensor> inputs = {xi};
    inputs.insert(inputs.end(), params.begin(), params.end());
    Result r;
    r.y = conv->forward(xi, TaskBatch::FromTaskIds(tasks));
    r.grads = torch::autograd::grad({(r.y * weights).sum()}, inputs, {}, false, false, /*allow_unused=*/true);
    return r;
  };
  const Result direct = run(false), winograd = run(true);
  EXPECT_TRUE(direct.y.is_contiguous());
  EXPECT_TRUE(winograd.y.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(winograd.y.is_contiguous());
  EXPECT_TRUE(winograd.grads[0].is_contiguous(at::MemoryFormat::ChannelsLast));
  const auto relative = [](const at::Tensor& a, const at::Tensor& b) {
    return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
  };
  EXPECT_LT(relative(winograd.y, direct.y), 1e-4);
  ASSERT_EQ(winograd.grads.size(), direct.grads.size());
  for (size_t k = 0; k < direct.grads.size(); ++k) {
    if (!direct.grads[k].defined()) {
      EXPECT_FALSE(winograd.grads[k].defined()) << "input " << k;
      continue;
    }
    ASSERT_TRUE(winograd.grads[k].defined()) << "input " << k;
    EXPECT_LT(relative(winograd.grads[k], direct.grads[k]), 1e-4) << "input " << k;
  }
}

TEST(SkillEmbedding, StartsAsBaseAndExportEqualsRoutedForward) {
  torch::manual_seed(1);
  const auto indices = torch::randint(10, {5, 3}, torch::kLong);
  const auto tasks = Ids({1, 0, 1, 2, 2});
  SkillEmbedding embedding(SkillEmbeddingOptions(10, 4).routing(RouterOptions::Poly(3, 3)).skills(SkillInventoryOptions::LowRank(2)));
  const auto batch = TaskBatch::FromTaskIds(tasks);
  EXPECT_TRUE(torch::allclose(embedding->forward(indices, batch), embedding->base()->forward(indices)));
  Randomise(*embedding);
  embedding->eval();
  const auto routed = embedding->forward(indices, batch);
  for (int64_t i = 0; i < 5; ++i) {
    auto plain = embedding->ExportTask(tasks[i].item<int64_t>());
    EXPECT_TRUE(torch::allclose(plain->forward(indices[i]), routed[i], 1e-5, 1e-6)) << "row " << i;
  }
  ExpectThrowWith([&] { embedding->forward(torch::full({5, 3}, 10, torch::kLong), batch); }, {"index 10", "10 embeddings"});
}

TEST(SkillCells, LstmAndGruMatchTorchCellsAndExportPerTask) {
  torch::manual_seed(2);
  const auto x = torch::randn({4, 6});
  const auto h = torch::randn({4, 8}), c = torch::randn({4, 8});
  const auto tasks = Ids({0, 1, 1, 0});
  const auto batch = TaskBatch::FromTaskIds(tasks);
  SkillLSTMCell lstm(SkillRNNCellOptions(6, 8).routing(RouterOptions::Poly(2, 3)));
  SkillGRUCell gru(SkillRNNCellOptions(6, 8).routing(RouterOptions::Poly(2, 3)).skills(SkillInventoryOptions::Dense()));
  // B = 0: the cells are plain torch cells with the base weights.
  for (int step = 0; step < 2; ++step) {
    lstm->eval();
    gru->eval();
    const auto [h_next, c_next] = lstm->forward(x, batch, {h, c});
    const auto g_next = gru->forward(x, batch, h);
    for (int64_t i = 0; i < 4; ++i) {
      auto plain_lstm = lstm->ExportTask(tasks[i].item<int64_t>());
      auto plain_gru = gru->ExportTask(tasks[i].item<int64_t>());
      const auto [h_ref, c_ref] = plain_lstm->forward(x.narrow(0, i, 1), std::make_tuple(h.narrow(0, i, 1), c.narrow(0, i, 1)));
      EXPECT_TRUE(torch::allclose(h_next.narrow(0, i, 1), h_ref, 1e-5, 1e-6));
      EXPECT_TRUE(torch::allclose(c_next.narrow(0, i, 1), c_ref, 1e-5, 1e-6));
      EXPECT_TRUE(torch::allclose(g_next.narrow(0, i, 1), plain_gru->forward(x.narrow(0, i, 1), h.narrow(0, i, 1)), 1e-5, 1e-6));
    }
    Randomise(*lstm);  // second pass: non-trivial skills and routing
    Randomise(*gru);
  }
}

// A model whose layers all share one router, registered once by the model.
struct SharedRoutingNetImpl : torch::nn::Cloneable<SharedRoutingNetImpl> {
  SharedRoutingNetImpl() { reset(); }
  void reset() override {
    router = register_module("router", Router(RouterOptions::Poly(3, 4)));
    first = register_module("first", SkillLinear(SkillLinearOptions(5, 6).router(router)));
    cell = register_module("cell", SkillGRUCell(SkillRNNCellOptions(6, 6).router(router)));
  }
  at::Tensor forward(const at::Tensor& x, const TaskBatch& batch) { return cell->forward(first->forward(x, batch), batch); }
  Router router{nullptr};
  SkillLinear first{nullptr};
  SkillGRUCell cell{nullptr};
};
TORCH_MODULE(SharedRoutingNet);

TEST(SkillLayers, ASharedRouterIsListedOnceAndServesEveryLayer) {
  torch::manual_seed(3);
  SharedRoutingNet net;
  int routers = 0;
  ForEachRouter(*net, [&](const std::string& name, RouterImpl&) {
    ++routers;
    EXPECT_EQ(name, "router");
  });
  EXPECT_EQ(routers, 1);
  const auto split = SplitRoutingParameters(*net);
  EXPECT_EQ(split.routing.size(), 1u);
  EXPECT_EQ(split.other.size() + split.routing.size(), net->parameters().size());
  net->forward(torch::randn({4, 5}), TaskBatch::FromTaskIds(Ids({0, 1, 2, 0}))).sum().backward();
  EXPECT_TRUE(net->router->logits().grad().defined());
}

}  // namespace
}  // namespace skillgrid::skills
