// Tests of agents/small_cnn: the fused small-model trunk against per-block ATen convolutions,
// ReLU and max-pool, in value and in the gradients of every kernel and bias.
#include "agents/small_cnn.h"

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

namespace skillgrid::agents {
namespace {

struct TrunkCase {
  at::ScalarType dtype = at::kDouble;
  int64_t h = 7, w = 7, c0 = 3;             // images
  std::vector<int64_t> channels{16, 32, 64};  // C1, C2, C3
  std::vector<int64_t> kernel_sizes{2, 2, 2};
  std::vector<int64_t> kernels_per_layer{3, 3, 1};  // 1 = shared by every block
  std::vector<int64_t> rows{4, 1, 6};
};

// Mostly-empty integer images with positive biases: many windows hold equal positive values, so
// the max-pool's choice among ties decides where gradients go.
at::Tensor SparseImages(const TrunkCase& tc, int64_t n) {
  const at::Tensor values = at::randint(1, 6, {n, tc.h, tc.w, tc.c0}, at::kLong);
  const at::Tensor keep = at::rand({n, tc.h, tc.w, 1}) < 0.3;
  return (values * keep).to(tc.dtype);
}

// Each block through ATen's NCHW convolution, ReLU and 2x2 max-pool, as the composite model does.
at::Tensor Reference(const at::Tensor& images, const std::vector<TrunkConv>& convs, const std::vector<int64_t>& rows) {
  std::vector<at::Tensor> outs;
  int64_t offset = 0;
  for (size_t u = 0; u < rows.size(); ++u) {
    at::Tensor x = images.narrow(0, offset, rows[u]).permute({0, 3, 1, 2});
    for (size_t l = 0; l < convs.size(); ++l) {
      const int64_t k = convs[l].kernels.size(0) == 1 ? 0 : static_cast<int64_t>(u);
      x = at::relu(at::conv2d(x, convs[l].kernels[k], convs[l].biases[k]));
      if (l == 0) x = at::max_pool2d(x, {2, 2});
    }
    outs.push_back(x.flatten(1));
    offset += rows[u];
  }
  return at::cat(outs, 0);
}

void ExpectFusedEqualsReference(const TrunkCase& tc, double tol) {
  const int64_t n = std::accumulate(tc.rows.begin(), tc.rows.end(), int64_t{0});
  const at::Tensor images = SparseImages(tc, n);
  std::vector<TrunkConv> convs;
  std::vector<at::Tensor> params;
  int64_t in = tc.c0;
  for (size_t l = 0; l < 3; ++l) {
    const int64_t k = tc.kernel_sizes[l], out = tc.channels[l], count = tc.kernels_per_layer[l];
    const double scale = 1.0 / std::sqrt(static_cast<double>(in * k * k));
    TrunkConv c{(at::randn({count, out, in, k, k}, tc.dtype) * scale).requires_grad_(),
                (at::rand({count, out}, tc.dtype) * 0.5).requires_grad_()};
    params.push_back(c.kernels);
    params.push_back(c.biases);
    convs.push_back(c);
    in = out;
  }
  const at::Tensor fused = SmallCnnTrunk(images, convs[0], convs[1], convs[2], tc.rows);
  const at::Tensor ref = Reference(images, convs, tc.rows);
  ASSERT_EQ(fused.sizes(), ref.sizes());
  EXPECT_TRUE(at::allclose(fused, ref, tol, tol)) << "max difference " << (fused - ref).abs().max().item<double>();
  const at::Tensor weights = at::randn(ref.sizes(), tc.dtype);
  const auto d_fused = torch::autograd::grad({(fused * weights).sum()}, params);
  const auto d_ref = torch::autograd::grad({(ref * weights).sum()}, params);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(at::allclose(d_fused[i], d_ref[i], tol, tol))
        << (i % 2 == 0 ? "kernels" : "biases") << " of conv" << i / 2 + 1 << ": max difference "
        << (d_fused[i] - d_ref[i]).abs().max().item<double>();
  }
}

TEST(SmallCnnTrunk, EqualsAtenConvolutionsReluAndPoolWithPerBlockAndSharedKernels) {
  torch::manual_seed(11);
  ExpectFusedEqualsReference(TrunkCase{}, 1e-10);
}

TEST(SmallCnnTrunk, FloatMatchesTooWithChannelCountsThatAreNotAVectorWidth) {
  torch::manual_seed(12);
  TrunkCase tc;
  tc.dtype = at::kFloat;
  ExpectFusedEqualsReference(tc, 1e-4);
  tc.channels = {5, 7, 3};
  tc.kernels_per_layer = {1, 3, 3};
  ExpectFusedEqualsReference(tc, 1e-4);
}

TEST(SmallCnnTrunk, OddFeatureMapsLeaveCellsOutsideEveryPoolWindowWithoutGradient) {
  torch::manual_seed(13);
  TrunkCase tc;  // 8x8 -> 7x7 (last row and column outside the pool) -> 3x3 -> 2x2 -> 1x1
  tc.h = 8;
  tc.w = 8;
  tc.channels = {4, 6, 5};
  tc.kernel_sizes = {2, 2, 2};
  ExpectFusedEqualsReference(tc, 1e-10);
  tc.h = 9;  // 3x3 first kernel: 9x8 -> 7x6 -> 3x3 -> 2x2 -> 1x1; several output positions
  tc.kernel_sizes = {3, 2, 1};
  ExpectFusedEqualsReference(tc, 1e-10);
}

TEST(SmallCnnTrunk, MismatchedShapesAreRejectedWithTheShapes) {
  const at::Tensor images = at::zeros({4, 7, 7, 3});
  const TrunkConv c1{at::zeros({1, 16, 3, 2, 2}), at::zeros({1, 16})};
  const TrunkConv c2{at::zeros({1, 32, 16, 2, 2}), at::zeros({1, 32})};
  const TrunkConv c3{at::zeros({1, 64, 32, 2, 2}), at::zeros({1, 64})};
  const TrunkConv wrong_in{at::zeros({1, 32, 8, 2, 2}), at::zeros({1, 32})};
  try {
    SmallCnnTrunk(images, c1, wrong_in, c3, {4});
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("take 8 channels but receive 16"), std::string::npos)
        << e.what_without_backtrace();
  }
  EXPECT_THROW(SmallCnnTrunk(images, c1, c2, c3, {3}), c10::Error);  // blocks miss a row
  const TrunkConv two{at::zeros({2, 16, 3, 2, 2}), at::zeros({2, 16})};
  EXPECT_THROW(SmallCnnTrunk(images, two, c2, c3, {1, 1, 2}), c10::Error);  // 2 kernels, 3 blocks
  EXPECT_THROW(SmallCnnTrunk(at::zeros({4, 3, 3, 3}), c1, c2, c3, {4}), c10::Error);  // too small
}

}  // namespace
}  // namespace skillgrid::agents
