// Tests of skills/amx_conv: the AMX weight gradient against ATen's fp32 convolution backward.
#include "skills/amx_conv.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

namespace skillgrid::skills {
namespace {

TEST(Conv3x3WeightGradAmx, EqualsTheFp32ConvolutionBackwardOnBf16Values) {
  if (!AmxBf16Available()) GTEST_SKIP() << "this CPU or OS offers no AMX-BF16";
  torch::manual_seed(6);
  // 19 rows: more than one pass of 16 samples; a non-square map; more outputs than inputs.
  for (const bool channels_last : {true, false}) {
    const int64_t n = 19, in = 32, out = 64, h = 5, w = 6;
    auto layout = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    const at::Tensor x = torch::randn({n, in, h, w}).to(at::kBFloat16).contiguous(layout);
    const at::Tensor dy = torch::randn({n, out, h, w}).to(at::kBFloat16).contiguous(layout);
    at::Tensor gw = torch::full({out, in, 3, 3}, 7.0f), gb = torch::full({out}, 7.0f);
    ASSERT_TRUE(Conv3x3WeightGradAmxSupports(x, dy));
    Conv3x3WeightGradAmx(x, dy, gw, gb);
    const auto ref = at::convolution_backward(dy.to(at::kFloat), x.to(at::kFloat), torch::zeros({out, in, 3, 3}),
                                              std::vector<int64_t>{out}, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                              {false, true, true});
    // Products of bf16 values are exact in fp32; only the summation order differs.
    EXPECT_TRUE(torch::allclose(gw, std::get<1>(ref), 1e-5, 1e-3)) << (gw - std::get<1>(ref)).abs().max();
    EXPECT_TRUE(torch::allclose(gb, std::get<2>(ref), 1e-5, 1e-3)) << (gb - std::get<2>(ref)).abs().max();
  }
}

TEST(Conv3x3WeightGradAmx, ResultsDoNotDependOnTheThreadCount) {
  if (!AmxBf16Available()) GTEST_SKIP() << "this CPU or OS offers no AMX-BF16";
  torch::manual_seed(7);
  const at::Tensor x = torch::randn({40, 64, 7, 7}).to(at::kBFloat16);
  const at::Tensor dy = torch::randn({40, 32, 7, 7}).to(at::kBFloat16);
  const int threads = at::get_num_threads();
  auto run = [&](int t) {
    at::set_num_threads(t);
    at::Tensor gw = torch::empty({32, 64, 3, 3}), gb = torch::empty({32});
    Conv3x3WeightGradAmx(x, dy, gw, gb);
    return std::make_pair(gw, gb);
  };
  const auto one = run(1), two = run(2);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(one.first, two.first));
  EXPECT_TRUE(at::equal(one.second, two.second));
}

TEST(Conv3x3WeightGradAmx, RefusesWhatItDoesNotSupport) {
  const at::Tensor x = torch::randn({2, 16, 5, 5}).to(at::kBFloat16);
  const at::Tensor dy = torch::randn({2, 32, 5, 5}).to(at::kBFloat16);
  EXPECT_FALSE(Conv3x3WeightGradAmxSupports(x, dy));                     // 16 input channels
  EXPECT_FALSE(Conv3x3WeightGradAmxSupports(dy.to(at::kFloat), dy));     // fp32
  at::Tensor gw = torch::empty({32, 16, 3, 3});
  EXPECT_THROW(Conv3x3WeightGradAmx(x, dy, gw, at::Tensor()), c10::Error);
}

}  // namespace
}  // namespace skillgrid::skills
