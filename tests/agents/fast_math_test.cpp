// Tests of agents/fast_math.h: the vectorised sigmoid and tanh against the C library over the
// whole useful range, the special values, tails shorter than a vector, and tanh's backward.
#include "agents/fast_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "agents/recurrent_kernels.h"

namespace skillgrid::agents {
namespace {

// Every 1e-4 step of [-30, 30] plus the points where the implementation switches form.
std::vector<float> Grid() {
  std::vector<float> x;
  for (int64_t i = -300000; i <= 300000; ++i) x.push_back(static_cast<float>(i) * 1e-4f);
  for (float v : {0.25f, std::nextafter(0.25f, 0.0f), 9.0f, 87.0f, 88.0f, 89.0f, 1e-20f, 1e30f}) {
    x.push_back(v);
    x.push_back(-v);
  }
  return x;
}

TEST(FastMath, SigmoidMatchesTheExactValueWithinAMillionth) {
  const std::vector<float> x = Grid();
  std::vector<float> y(x.size());
  FastSigmoid(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
    ASSERT_NEAR(y[i], exact, 1e-7) << "x = " << x[i];
    if (exact > 1e-30) {
      ASSERT_LE(std::fabs(y[i] - exact) / exact, 1e-6) << "x = " << x[i];
    }
  }
}

TEST(FastMath, TanhMatchesTheExactValueIncludingNearZero) {
  const std::vector<float> x = Grid();
  std::vector<float> y(x.size());
  FastTanh(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(x[i]));
    ASSERT_NEAR(y[i], exact, 2e-7) << "x = " << x[i];
    if (exact != 0.0) {
      ASSERT_LE(std::fabs(y[i] - exact) / std::fabs(exact), 1e-6) << "x = " << x[i];
    }
    ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << "x = " << x[i];
  }
}

TEST(FastMath, SpecialValuesSaturateAndNaNPropagates) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {inf, -inf, nan, 0.0f, -0.0f};
  std::vector<float> s(x.size()), t(x.size());
  FastSigmoid(x.data(), s.data(), 5);
  FastTanh(x.data(), t.data(), 5);
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_LT(s[1], 1e-38f);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_EQ(s[3], 0.5f);
  EXPECT_EQ(t[0], 1.0f);
  EXPECT_EQ(t[1], -1.0f);
  EXPECT_TRUE(std::isnan(t[2]));
  EXPECT_EQ(t[3], 0.0f);
  EXPECT_TRUE(std::signbit(t[4]));
}

TEST(FastMath, EveryLengthIsCoveredInPlaceWithoutTouchingPastTheEnd) {
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> buf(static_cast<size_t>(n) + 1);
    for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i) - 2.0f;
    buf[static_cast<size_t>(n)] = 123.0f;  // sentinel
    std::vector<float> t = buf;
    FastSigmoid(buf.data(), buf.data(), n);
    FastTanh(t.data(), t.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double x = 0.1 * static_cast<double>(i) - 2.0;
      ASSERT_NEAR(buf[static_cast<size_t>(i)], 1.0 / (1.0 + std::exp(-x)), 1e-6) << "n = " << n << ", i = " << i;
      ASSERT_NEAR(t[static_cast<size_t>(i)], std::tanh(x), 1e-6) << "n = " << n << ", i = " << i;
    }
    EXPECT_EQ(buf[static_cast<size_t>(n)], 123.0f) << "n = " << n;
    EXPECT_EQ(t[static_cast<size_t>(n)], 123.0f) << "n = " << n;
  }
}

TEST(FastMath, TanhOpMatchesTorchForwardAndBackward) {
  at::manual_seed(3);
  const at::Tensor x = (at::randn({37, 19}) * 3).requires_grad_(true);
  const at::Tensor ref = x.detach().clone().requires_grad_(true);
  const at::Tensor w = at::randn({37, 19});
  const at::Tensor y = Tanh(x);
  const at::Tensor y_ref = at::tanh(ref);
  EXPECT_TRUE(at::allclose(y, y_ref, 1e-6, 2e-7));
  (y * w).sum().backward();
  (y_ref * w).sum().backward();
  EXPECT_TRUE(at::allclose(x.grad(), ref.grad(), 1e-5, 1e-6)) << (x.grad() - ref.grad()).abs().max();
  // Doubles and non-contiguous inputs take torch's op.
  const at::Tensor d = at::randn({4, 6}, at::kDouble).t();
  EXPECT_TRUE(at::equal(Tanh(d), at::tanh(d)));
}

}  // namespace
}  // namespace skillgrid::agents
