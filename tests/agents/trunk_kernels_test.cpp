// Tests of agents/trunk_kernels: the fused bf16 trunk ops against ATen's fp32 composites on the
// same bf16-rounded values.
#include "agents/trunk_kernels.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/batchnorm.h>

namespace skillgrid::agents {
namespace {

const auto kChannelsLast = at::MemoryFormat::ChannelsLast;

// fp32 values that bf16 holds exactly.
at::Tensor Bf16Values(at::IntArrayRef sizes) { return at::randn(sizes).to(at::kBFloat16).to(at::kFloat); }

// max |a - b| <= rel * max |b| + abs.
void ExpectClose(const at::Tensor& a, const at::Tensor& b, double rel, double abs, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double diff = (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
  const double scale = b.to(at::kFloat).abs().max().item<double>();
  EXPECT_LE(diff, rel * scale + abs) << what << ": max diff " << diff << " at scale " << scale;
}

TEST(BowEmbeddingBf16, SumsTheThreeRowsAndScattersGradientsIntoTheTable) {
  at::manual_seed(1);
  const int64_t rows = 12, c = 16;
  const at::Tensor indices = at::randint(0, rows, {3, 2, 3, 3}, at::kLong);
  const at::Tensor table = at::randn({rows, c}).requires_grad_();
  const at::Tensor ours = BowEmbeddingBf16(indices, table);
  EXPECT_EQ(ours.scalar_type(), at::kBFloat16);
  EXPECT_EQ(ours.sizes(), (at::IntArrayRef{3, c, 2, 3}));
  EXPECT_TRUE(ours.is_contiguous(kChannelsLast));
  const at::Tensor ref = at::embedding(table, indices).sum(3).permute({0, 3, 1, 2});
  ExpectClose(ours, ref, 8e-3, 0.0, "forward");

  const at::Tensor upstream = Bf16Values({3, c, 2, 3});
  const auto g_ours = torch::autograd::grad({(ours.to(at::kFloat) * upstream).sum()}, {table})[0];
  const auto g_ref = torch::autograd::grad({(ref * upstream).sum()}, {table})[0];
  ExpectClose(g_ours, g_ref, 1e-6, 1e-6, "table gradient");

  EXPECT_THROW(BowEmbeddingBf16(indices + rows, table), c10::Error);
}

struct NormCase {
  bool training, film, residual;
};

// Readable test names: train/eval, with or without FiLM and residual.
void PrintTo(const NormCase& c, std::ostream* os) {
  *os << (c.training ? "train" : "eval") << (c.film ? "+film" : "") << (c.residual ? "+residual" : "");
}

class BatchNormReluBf16Test : public ::testing::TestWithParam<NormCase> {};

TEST_P(BatchNormReluBf16Test, MatchesBatchNormFilmReluResidualInFp32) {
  const NormCase p = GetParam();
  at::manual_seed(2);
  const int64_t n = 5, c = 8, h = 3, w = 3;
  torch::nn::BatchNorm2d ours_bn(c), ref_bn(c);
  {
    torch::NoGradGuard no_grad;
    ours_bn->weight.normal_(1.0, 0.3);
    ours_bn->bias.normal_(0.0, 0.3);
    ours_bn->running_mean.normal_(0.0, 0.5);
    ours_bn->running_var.uniform_(0.5, 2.0);
    for (const auto& [a, b] : {std::pair{ref_bn->weight, ours_bn->weight}, {ref_bn->bias, ours_bn->bias},
                               {ref_bn->running_mean, ours_bn->running_mean},
                               {ref_bn->running_var, ours_bn->running_var}}) {
      a.copy_(b);
    }
  }
  ours_bn->train(p.training);
  ref_bn->train(p.training);
  // Inputs of the residual blocks are bf16 activations; a mean away from 0 tests the variance.
  const at::Tensor x32 = (Bf16Values({n, c, h, w}) + 2.0).to(at::kBFloat16).to(at::kFloat);
  const at::Tensor x = x32.to(at::kBFloat16).contiguous(kChannelsLast).requires_grad_();
  const at::Tensor x_ref = x32.clone().requires_grad_();
  const at::Tensor scale = p.film ? at::randn({n, c}).requires_grad_() : at::Tensor();
  const at::Tensor shift = p.film ? at::randn({n, c}).requires_grad_() : at::Tensor();
  const at::Tensor res32 = Bf16Values({n, c, h, w});
  const at::Tensor res = p.residual ? res32.to(at::kBFloat16).contiguous(kChannelsLast).requires_grad_() : at::Tensor();
  const at::Tensor res_ref = p.residual ? res32.clone().requires_grad_() : at::Tensor();

  const at::Tensor out = BatchNormReluBf16(x, *ours_bn, scale, shift, res);
  at::Tensor t = p.film ? x_ref * scale.unsqueeze(2).unsqueeze(3) + shift.unsqueeze(2).unsqueeze(3) : x_ref;
  at::Tensor ref = at::relu(ref_bn->forward(t));
  if (p.residual) ref = ref + res_ref;
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(out.is_contiguous(kChannelsLast));
  ExpectClose(out, ref, 8e-3, 1e-6, "forward");
  ExpectClose(ours_bn->running_mean, ref_bn->running_mean, 1e-5, 1e-6, "running mean");
  ExpectClose(ours_bn->running_var, ref_bn->running_var, 1e-5, 1e-6, "running var");
  EXPECT_EQ(ours_bn->num_batches_tracked.item<int64_t>(), ref_bn->num_batches_tracked.item<int64_t>());

  const at::Tensor upstream = Bf16Values({n, c, h, w});
  std::vector<at::Tensor> ours_in = {x, ours_bn->weight, ours_bn->bias};
  std::vector<at::Tensor> ref_in = {x_ref, ref_bn->weight, ref_bn->bias};
  std::vector<std::string> names = {"x", "weight", "bias"};
  if (p.film) {
    ours_in.insert(ours_in.end(), {scale, shift});
    ref_in.insert(ref_in.end(), {scale, shift});
    names.insert(names.end(), {"film scale", "film shift"});
  }
  if (p.residual) {
    ours_in.push_back(res);
    ref_in.push_back(res_ref);
    names.push_back("residual");
  }
  const auto g_ours = torch::autograd::grad({(out.to(at::kFloat) * upstream).sum()}, ours_in);
  const auto g_ref = torch::autograd::grad({(ref * upstream).sum()}, ref_in);
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(g_ours[i].scalar_type(), ours_in[i].scalar_type()) << names[i];
    // The ops agree up to one bf16 rounding of the pre-activation (which can flip a ReLU
    // exactly at 0 only on ties, absent from random data) and of the bf16 input gradient.
    ExpectClose(g_ours[i], g_ref[i], 2e-2, 1e-4, names[i] + " gradient");
  }
}

INSTANTIATE_TEST_SUITE_P(Agents, BatchNormReluBf16Test,
                         ::testing::Values(NormCase{true, false, false}, NormCase{true, true, true},
                                           NormCase{false, false, false}, NormCase{false, true, true},
                                           NormCase{true, true, false}));

TEST(BatchNormReluBf16, RejectsMismatchedShapes) {
  torch::nn::BatchNorm2d bn(4);
  const at::Tensor x = at::randn({2, 4, 3, 3}).to(at::kBFloat16).contiguous(kChannelsLast);
  EXPECT_THROW(BatchNormReluBf16(x, *bn, at::randn({2, 3}), at::randn({2, 3})), c10::Error);
  EXPECT_THROW(BatchNormReluBf16(x, *bn, {}, {}, at::randn({2, 4, 2, 2})), c10::Error);
  torch::nn::BatchNorm2d other(5);
  EXPECT_THROW(BatchNormReluBf16(x, *other), c10::Error);
}

TEST(GlobalMaxReluBf16, EqualsReluOfAWholeMapMaxPoolWithItsGradient) {
  at::manual_seed(3);
  const int64_t n = 3, c = 5, h = 4, w = 4;
  // Distinct small integers (exact in bf16, no ties); channel 0 all negative, so ReLU gates it
  // (its ties get no gradient either way).
  at::Tensor values = at::randperm(n * c * h * w, at::kLong).to(at::kFloat).view({n, c, h, w}) - 100.0f;
  values.select(1, 0).copy_(-values.select(1, 0).abs() - 1.0f);
  const at::Tensor x_ref = values.clone().requires_grad_();
  const at::Tensor x = values.to(at::kBFloat16).contiguous(kChannelsLast).requires_grad_();
  const at::Tensor out = GlobalMaxReluBf16(x);
  const at::Tensor ref = at::relu(at::max_pool2d(x_ref, {h, w})).flatten(1);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(out, ref));
  EXPECT_TRUE((ref.select(1, 0) == 0).all().item<bool>());
  const at::Tensor upstream = Bf16Values({n, c});
  const auto g_ours = torch::autograd::grad({(out * upstream).sum()}, {x})[0];
  const auto g_ref = torch::autograd::grad({(ref * upstream).sum()}, {x_ref})[0];
  EXPECT_TRUE(at::equal(g_ours.to(at::kFloat), g_ref));
}

}  // namespace
}  // namespace skillgrid::agents
