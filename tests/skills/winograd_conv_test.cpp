// Tests of skills/winograd_conv: the Winograd F(2x2, 3x3) bf16 kernels against ATen's fp32
// convolution and its autograd gradients on the same bf16-rounded operands.
#include "skills/winograd_conv.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <torch/torch.h>

#include "test_util.h"

namespace skillgrid::skills {
namespace {

// Largest |a - b| as a fraction of the largest |b|. Winograd rounds its transformed operands to
// bf16 (relative error 2^-9 each), so results differ from fp32 by a few 2^-9 of their scale; a
// wrong transform coefficient or tile offset gives errors of the order of the values themselves.
double RelativeError(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b).abs().max().item<double>() / b.abs().max().item<double>();
}

constexpr double kTolerance = 0.015;

struct Shape {
  int64_t n, in, out, h, w;
};

// Maps covering full tiles, edge tiles cut in one or both directions, a single cell, and more
// inputs than outputs and the reverse.
const Shape kShapes[] = {{3, 32, 64, 7, 7}, {2, 64, 32, 5, 6}, {1, 32, 32, 1, 1}, {5, 128, 96, 8, 3}};

// The CPU flags Linux reports (empty when /proc/cpuinfo is missing).
std::string CpuFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) return line + " ";
  }
  return "";
}

TEST(CpuHasNativeBf16, AgreesWithTheFlagsLinuxReports) {
  const std::string flags = CpuFlags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags";
  const bool avx512_bf16 = flags.find(" avx512_bf16 ") != std::string::npos &&
                           flags.find(" avx512bw ") != std::string::npos && flags.find(" avx512vl ") != std::string::npos;
  const bool amx = flags.find(" amx_bf16 ") != std::string::npos && std::getenv("SKILLGRID_NO_AMX") == nullptr;
  EXPECT_EQ(CpuHasNativeBf16(), avx512_bf16 || amx) << flags;
}

TEST(WinogradConv3x3, ForwardEqualsTheFp32ConvolutionOfTheBf16Operands) {
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  torch::manual_seed(11);
  for (const Shape& s : kShapes) {
    for (const bool channels_last : {true, false}) {
      const at::Tensor x =
          torch::randn({s.n, s.in, s.h, s.w})
              .to(at::kBFloat16)
              .contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
      const at::Tensor w = torch::randn({s.out, s.in, 3, 3}) * 0.1, b = torch::randn({s.out});
      ASSERT_TRUE(WinogradConv3x3Supports(x, s.out));
      const at::Tensor y = WinogradConv3x3(x, w, b, /*flip_transpose=*/false);
      ASSERT_EQ(y.sizes(), at::IntArrayRef({s.n, s.out, s.h, s.w}));
      EXPECT_EQ(y.scalar_type(), at::kBFloat16);
      const at::Tensor ref = torch::conv2d(x.to(at::kFloat), w, b, 1, 1);
      EXPECT_LT(RelativeError(y, ref), kTolerance) << s.n << "x" << s.in << "x" << s.h << "x" << s.w << " -> " << s.out;
    }
  }
}

TEST(WinogradConv3x3, FlippedKernelGivesTheInputGradientAndWeightGradMatchesAutograd) {
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  torch::manual_seed(12);
  for (const Shape& s : kShapes) {
    const at::Tensor x = torch::randn({s.n, s.in, s.h, s.w}).to(at::kBFloat16);
    const at::Tensor dy = torch::randn({s.n, s.out, s.h, s.w}).to(at::kBFloat16);
    const at::Tensor w = (torch::randn({s.out, s.in, 3, 3}) * 0.1).to(at::kBFloat16).to(at::kFloat);
    at::Tensor xr = x.to(at::kFloat).requires_grad_(), wr = w.clone().requires_grad_();
    at::Tensor br = torch::zeros({s.out}).requires_grad_();
    torch::conv2d(xr, wr, br, 1, 1).backward(dy.to(at::kFloat));

    const at::Tensor dx = WinogradConv3x3(dy, w, at::Tensor(), /*flip_transpose=*/true);
    ASSERT_EQ(dx.sizes(), x.sizes());
    EXPECT_LT(RelativeError(dx, xr.grad()), kTolerance);

    at::Tensor gw = torch::full({s.out, s.in, 3, 3}, 7.0f), gb = torch::full({s.out}, 7.0f);
    WinogradConv3x3WeightGrad(x, dy, gw, gb);
    EXPECT_LT(RelativeError(gw, wr.grad()), kTolerance);
    // The bias gradient sums bf16 values exactly representable in fp32; only the order differs.
    EXPECT_TRUE(torch::allclose(gb, br.grad(), 1e-5, 1e-3)) << (gb - br.grad()).abs().max();
  }
}

TEST(WinogradConv3x3, RoundingErrorStaysWithinTwiceAndAHalfThatOfTheDirectBf16Convolution) {
  // Winograd rounds the transformed input and kernel to bf16, where the direct convolution rounds
  // only the kernel: measured 1.6x (7x7 maps) to 1.95x (2x2) the direct error norm.
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  torch::manual_seed(14);
  for (const int64_t hw : {2, 4, 7}) {
    const at::Tensor x = at::relu(torch::randn({12, 128, hw, hw})).to(at::kBFloat16);
    const at::Tensor w = torch::randn({128, 128, 3, 3}) * 0.03;
    const at::Tensor ref = torch::conv2d(x.to(at::kFloat), w, {}, 1, 1);
    const at::Tensor winograd = WinogradConv3x3(x, w, {}, false).to(at::kFloat);
    const at::Tensor direct = torch::conv2d(x, w.to(at::kBFloat16), {}, 1, 1).to(at::kFloat);
    const double winograd_error = ((winograd - ref).norm() / ref.norm()).item<double>();
    const double direct_error = ((direct - ref).norm() / ref.norm()).item<double>();
    EXPECT_LT(winograd_error, 2.5 * direct_error) << hw << "x" << hw << " maps";
  }
}

TEST(WinogradConv3x3, ResultsDoNotDependOnTheThreadCount) {
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  torch::manual_seed(13);
  // 40 rows of 7x7: 640 tiles, so the forward's chunks and the gradient's tile blocks both split.
  const at::Tensor x = torch::randn({40, 64, 7, 7}).to(at::kBFloat16);
  const at::Tensor dy = torch::randn({40, 32, 7, 7}).to(at::kBFloat16);
  const at::Tensor w = torch::randn({32, 64, 3, 3}) * 0.1;
  testing::ExpectSameBitsForAnyThreadCount([&] {
    at::Tensor gw = torch::empty({32, 64, 3, 3}), gb = torch::empty({32});
    WinogradConv3x3WeightGrad(x, dy, gw, gb);
    return std::vector<at::Tensor>{WinogradConv3x3(x, w, at::Tensor(), false), WinogradConv3x3(dy, w, {}, true), gw, gb};
  });
}

TEST(WinogradConv3x3, RefusesWhatItDoesNotSupport) {
  const at::Tensor x = torch::randn({2, 32, 7, 7}).to(at::kBFloat16);
  EXPECT_FALSE(WinogradConv3x3Supports(x.to(at::kFloat), 32));         // fp32 input
  EXPECT_FALSE(WinogradConv3x3Supports(x.narrow(1, 0, 16), 32));       // 16 input channels
  EXPECT_FALSE(WinogradConv3x3Supports(x, 48));                        // 48 output channels
  EXPECT_FALSE(WinogradConv3x3Supports(x.narrow(0, 0, 0), 32));        // no rows
  EXPECT_THROW(WinogradConv3x3(x.to(at::kFloat), torch::randn({32, 32, 3, 3}), {}, false), c10::Error);
  EXPECT_THROW(WinogradConv3x3(x, torch::randn({32, 32, 5, 5}), {}, false), c10::Error);
  at::Tensor gw = torch::empty({32, 32, 3, 3});
  EXPECT_THROW(WinogradConv3x3WeightGrad(x, torch::randn({2, 32, 6, 7}).to(at::kBFloat16), gw, {}), c10::Error);
  if (WinogradConvPreferred()) {
    EXPECT_TRUE(WinogradConv3x3Supports(x, 32));
    at::Tensor wrong = torch::empty({32, 16, 3, 3});
    EXPECT_THROW(WinogradConv3x3WeightGrad(x, x, wrong, {}), c10::Error);
    EXPECT_THROW(WinogradConv3x3(x, torch::randn({32, 32, 3, 3}), torch::randn({5}), false), c10::Error);
  }
}

}  // namespace
}  // namespace skillgrid::skills
