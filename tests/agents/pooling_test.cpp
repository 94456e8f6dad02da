// Tests of agents/pooling: the fused max-pool + relu against torch's ops, ties included.
#include "agents/pooling.h"

#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

namespace skillgrid::agents {
namespace {

struct PoolCase {
  int64_t size, kernel, stride;
};

class MaxPoolReluTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxPoolReluTest, MatchesTorchValuesAndGradientsWithTies) {
  // Small integers make ties within windows common (as identical grid tiles do after a
  // convolution); torch gives the whole gradient to the first maximum, and so must we.
  const PoolCase c = GetParam();
  torch::manual_seed(21);
  const at::Tensor x = at::randint(-3, 4, {3, 4, c.size, c.size}, at::kDouble).requires_grad_();
  const at::Tensor ours = MaxPoolRelu(x, c.kernel, c.stride);
  const at::Tensor pool_then_relu = at::relu(at::max_pool2d(x, {c.kernel, c.kernel}, {c.stride, c.stride}));
  const at::Tensor relu_then_pool = at::max_pool2d(at::relu(x), {c.kernel, c.kernel}, {c.stride, c.stride});
  ASSERT_TRUE(at::equal(ours, pool_then_relu));
  ASSERT_TRUE(at::equal(ours, relu_then_pool));
  const at::Tensor weights = at::randn(ours.sizes(), at::kDouble);
  const at::Tensor d_ours = torch::autograd::grad({(ours * weights).sum()}, {x})[0];
  const at::Tensor d_a = torch::autograd::grad({(pool_then_relu * weights).sum()}, {x})[0];
  const at::Tensor d_b = torch::autograd::grad({(relu_then_pool * weights).sum()}, {x})[0];
  EXPECT_TRUE(at::allclose(d_ours, d_a, 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(d_ours, d_b, 1e-12, 1e-12));
  EXPECT_GT(d_ours.abs().sum().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Windows, MaxPoolReluTest,
                         ::testing::Values(PoolCase{6, 2, 2}, PoolCase{7, 2, 2}, PoolCase{7, 7, 2},
                                           PoolCase{5, 3, 1}),
                         [](const ::testing::TestParamInfo<PoolCase>& info) {
                           const PoolCase& c = info.param;
                           return "Size" + std::to_string(c.size) + "Kernel" + std::to_string(c.kernel) + "Stride" +
                                  std::to_string(c.stride);
                         });

TEST(MaxPoolRelu, RejectsAWindowLargerThanTheInput) {
  EXPECT_THROW(MaxPoolRelu(at::zeros({1, 1, 2, 2}), 3, 1), c10::Error);
}

}  // namespace
}  // namespace skillgrid::agents
