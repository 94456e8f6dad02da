// Tests of skills/winograd_conv_fp32: the fp32 Winograd F(4x4, 3x3) kernels against ATen's
// convolution and its autograd gradients. They run on every CPU (the kernels are portable C++
// and BLAS); WinogradFp32Preferred only decides whether routed convolutions use them.
#include "skills/winograd_conv_fp32.h"

#include <gtest/gtest.h>

#include <vector>

#include <torch/torch.h>

#include "test_util.h"

namespace skillgrid::skills {
namespace {

// Largest |a - b| as a fraction of the largest |b|. fp32 Winograd sums 36 products in another
// order and scales by factors from 1/24 to 8, so it differs from the direct convolution by a few
// fp32 roundings (~2e-6 of the scale); a wrong transform coefficient or tile offset gives errors
// of the order of the values themselves.
double RelativeError(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

constexpr double kTolerance = 1e-4;

struct Shape {
  int64_t n, in, out, h, w;
};

// Full tiles, edge tiles cut in one or both directions, a single cell, few channels, more inputs
// than outputs and the reverse, maps of three tiles a side, and 40 rows of 7x7 maps (160 tiles:
// several chunks and gradient groups). Where the CPU has AVX2 and FMA, channel counts that are
// multiples of 8 run the own micro-kernel (with edge tiles of fewer than 6 rows and panels of 8
// columns), the others OpenBLAS.
const Shape kShapes[] = {{3, 32, 64, 7, 7},  {2, 5, 3, 5, 6},   {1, 8, 8, 1, 1},
                         {5, 128, 96, 8, 3}, {2, 6, 5, 9, 10}, {40, 16, 24, 7, 7}};

TEST(WinogradConv3x3Fp32, ForwardEqualsTheDirectConvolution) {
  torch::manual_seed(21);
  for (const Shape& s : kShapes) {
    const at::Tensor x = torch::randn({s.n, s.in, s.h, s.w});
    const at::Tensor w = torch::randn({s.out, s.in, 3, 3}) * 0.1;
    const at::Tensor b = torch::randn({s.out});
    ASSERT_TRUE(WinogradConv3x3Fp32Supports(x));
    const at::Tensor y = WinogradConv3x3Fp32(x, w, b, /*flip_transpose=*/false);
    const at::Tensor ref = torch::conv2d(x, w, b, 1, 1);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT(RelativeError(y, ref), kTolerance) << s.n << "x" << s.in << "x" << s.h << "x" << s.w << " -> " << s.out;
    // A channels-last (non-contiguous) input gives the same result.
    EXPECT_TRUE(torch::equal(WinogradConv3x3Fp32(x.contiguous(at::MemoryFormat::ChannelsLast), w, b, false), y));
    // Written into rows of a larger channels-last output, it gives the same bits there and
    // leaves the other rows alone.
    const at::Tensor whole =
        torch::full({s.n + 2, s.out, s.h, s.w}, 7.0f).contiguous(at::MemoryFormat::ChannelsLast);
    WinogradConv3x3Fp32(x, w, b, false, whole.narrow(0, 1, s.n));
    EXPECT_TRUE(torch::equal(whole.narrow(0, 1, s.n), y));
    EXPECT_TRUE(torch::equal(whole.narrow(0, 0, 1), torch::full({1, s.out, s.h, s.w}, 7.0f)));
    EXPECT_TRUE(torch::equal(whole.narrow(0, s.n + 1, 1), torch::full({1, s.out, s.h, s.w}, 7.0f)));
  }
}

TEST(WinogradConv3x3Fp32, FlippedKernelGivesTheInputGradientAndWeightGradMatchesAutograd) {
  torch::manual_seed(22);
  for (const Shape& s : kShapes) {
    const at::Tensor x = torch::randn({s.n, s.in, s.h, s.w}).requires_grad_(true);
    const at::Tensor w = (torch::randn({s.out, s.in, 3, 3}) * 0.1).requires_grad_(true);
    const at::Tensor b = torch::randn({s.out}).requires_grad_(true);
    const at::Tensor dy = torch::randn({s.n, s.out, s.h, s.w});
    torch::conv2d(x, w, b, 1, 1).backward(dy);
    const at::Tensor dx = WinogradConv3x3Fp32(dy, w.detach(), at::Tensor(), /*flip_transpose=*/true);
    EXPECT_LT(RelativeError(dx, x.grad()), kTolerance) << "input gradient, " << s.n << " rows of " << s.h << "x" << s.w;
    at::Tensor gw = torch::empty({s.out, s.in, 3, 3}), gb = torch::empty({s.out});
    WinogradConv3x3Fp32WeightGrad(x.detach(), dy, gw, gb);
    EXPECT_LT(RelativeError(gw, w.grad()), kTolerance) << "weight gradient, " << s.n << " rows of " << s.h << "x" << s.w;
    EXPECT_LT(RelativeError(gb, b.grad()), kTolerance) << "bias gradient";
  }
}

TEST(WinogradConv3x3Fp32, BlocksGiveEachBlockItsOwnKernelsResult) {
  // Blocks of 10, 0, 3 and 14 rows (one chunk and a bit, none, less than a chunk, two chunks)
  // in one call equal one call per block, bit for bit, with biases, flipped, and with 12 output
  // channels (not a multiple of 8: the BLAS products).
  torch::manual_seed(24);
  const std::vector<int64_t> rows = {10, 0, 3, 14};
  for (const int64_t out : {16, 12}) {
    const at::Tensor x = torch::randn({27, 8, 7, 7});
    const at::Tensor kernels = torch::randn({4, out, 8, 3, 3}) * 0.1;
    const at::Tensor biases = torch::randn({4, out});
    const at::Tensor y = WinogradConv3x3Fp32Blocks(x, kernels, biases, rows, /*flip_transpose=*/false);
    const at::Tensor dy = torch::randn({27, out, 7, 7});
    const at::Tensor dx = WinogradConv3x3Fp32Blocks(dy, kernels, at::Tensor(), rows, /*flip_transpose=*/true);
    EXPECT_TRUE(y.is_contiguous(at::MemoryFormat::ChannelsLast));
    int64_t offset = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      const int64_t n = rows[k];
      if (n > 0) {
        const auto i = static_cast<int64_t>(k);
        EXPECT_TRUE(torch::equal(y.narrow(0, offset, n),
                                 WinogradConv3x3Fp32(x.narrow(0, offset, n), kernels[i], biases[i], false)))
            << "block " << k << ", " << out << " channels";
        EXPECT_TRUE(torch::equal(dx.narrow(0, offset, n),
                                 WinogradConv3x3Fp32(dy.narrow(0, offset, n), kernels[i], {}, true)))
            << "flipped block " << k << ", " << out << " channels";
      }
      offset += n;
    }
  }
  const at::Tensor x = torch::randn({5, 8, 7, 7});
  const at::Tensor kernels = torch::randn({2, 8, 8, 3, 3});
  EXPECT_THROW(WinogradConv3x3Fp32Blocks(x, kernels, {}, {2, 2}, false), c10::Error);     // 4 rows of 5
  EXPECT_THROW(WinogradConv3x3Fp32Blocks(x, kernels, {}, {5}, false), c10::Error);        // 1 block, 2 kernels
  EXPECT_THROW(WinogradConv3x3Fp32Blocks(x, kernels, {}, {6, -1}, false), c10::Error);    // negative block
  EXPECT_THROW(WinogradConv3x3Fp32Blocks(x, kernels, torch::randn({2, 7}), {2, 3}, false), c10::Error);
}

TEST(WinogradConv3x3Fp32, ResultsDoNotDependOnTheThreadCount) {
  torch::manual_seed(23);
  // 48 rows of 7x7: 192 tiles, six chunks (five of 36), so both the forward and the gradient split.
  const at::Tensor x = torch::randn({48, 32, 7, 7});
  const at::Tensor dy = torch::randn({48, 16, 7, 7});
  const at::Tensor w = torch::randn({16, 32, 3, 3}) * 0.1;
  testing::ExpectSameBitsForAnyThreadCount([&] {
    at::Tensor gw = torch::empty({16, 32, 3, 3}), gb = torch::empty({16});
    WinogradConv3x3Fp32WeightGrad(x, dy, gw, gb);
    return std::vector<at::Tensor>{WinogradConv3x3Fp32(x, w, at::Tensor(), false),
                                   WinogradConv3x3Fp32(dy, w, {}, true), gw, gb};
  });
}

TEST(WinogradConv3x3Fp32, RefusesWhatItDoesNotSupport) {
  const at::Tensor x = torch::randn({2, 8, 7, 7});
  EXPECT_FALSE(WinogradConv3x3Fp32Supports(x.to(at::kDouble)));
  EXPECT_FALSE(WinogradConv3x3Fp32Supports(x.to(at::kBFloat16)));
  EXPECT_FALSE(WinogradConv3x3Fp32Supports(x.narrow(0, 0, 0)));
  EXPECT_FALSE(WinogradConv3x3Fp32Supports(x.flatten(2)));
  EXPECT_THROW(WinogradConv3x3Fp32(x.to(at::kDouble), torch::randn({8, 8, 3, 3}), {}, false), c10::Error);
  EXPECT_THROW(WinogradConv3x3Fp32(x, torch::randn({8, 4, 3, 3}), {}, false), c10::Error);  // C_in mismatch
  EXPECT_THROW(WinogradConv3x3Fp32(x, torch::randn({8, 8, 5, 5}), {}, false), c10::Error);  // not 3x3
  EXPECT_THROW(WinogradConv3x3Fp32(x, torch::randn({6, 8, 3, 3}), torch::randn({5}), false), c10::Error);
  const at::Tensor w = torch::randn({6, 8, 3, 3});
  EXPECT_THROW(WinogradConv3x3Fp32(x, w, {}, false, torch::empty({2, 6, 7, 7})), c10::Error);  // NCHW out
  EXPECT_THROW(WinogradConv3x3Fp32(x, w, {}, false,
                                   torch::empty({2, 5, 7, 7}).contiguous(at::MemoryFormat::ChannelsLast)),
               c10::Error);  // out of another shape
  at::Tensor gw = torch::empty({6, 8, 3, 3});
  EXPECT_THROW(WinogradConv3x3Fp32WeightGrad(x, torch::randn({2, 5, 7, 7}), gw, {}), c10::Error);  // C_out mismatch
}

}  // namespace
}  // namespace skillgrid::skills
