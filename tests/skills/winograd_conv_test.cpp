// Tests of skills/winograd_conv: the bf16 Winograd kernels (every tile: F(2x2), F(2x4), F(4x4))
// against ATen's fp32 convolution and its autograd gradients on the same bf16-rounded operands.
#include "skills/winograd_conv.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

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

constexpr WinogradTile kTiles[] = {WinogradTile::k2x2, WinogradTile::k2x4, WinogradTile::k4x4};

// Bound on RelativeError per tile: larger tiles round larger transformed values (measured
// worst cases over these shapes: 0.012, 0.016 and 0.059).
double Tolerance(WinogradTile tile) {
  switch (tile) {
    case WinogradTile::k2x2: return 0.015;
    case WinogradTile::k2x4: return 0.03;
    case WinogradTile::k4x4: return 0.09;
  }
  return 0.0;
}

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
  for (const WinogradTile tile : kTiles) {
  const ScopedWinogradBf16Tile use(tile);
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
      EXPECT_LT(RelativeError(y, ref), Tolerance(tile))
          << WinogradTileName(tile) << " tiles, " << s.n << "x" << s.in << "x" << s.h << "x" << s.w << " -> " << s.out;
    }
  }
  }
}

TEST(WinogradConv3x3, FlippedKernelGivesTheInputGradientAndWeightGradMatchesAutograd) {
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  for (const WinogradTile tile : kTiles) {
  const ScopedWinogradBf16Tile use(tile);
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
    EXPECT_LT(RelativeError(dx, xr.grad()), Tolerance(tile)) << WinogradTileName(tile);

    at::Tensor gw = torch::full({s.out, s.in, 3, 3}, 7.0f), gb = torch::full({s.out}, 7.0f);
    WinogradConv3x3WeightGrad(x, dy, gw, gb);
    EXPECT_LT(RelativeError(gw, wr.grad()), Tolerance(tile)) << WinogradTileName(tile);
    // The bias gradient sums bf16 values exactly representable in fp32; only the order differs.
    EXPECT_TRUE(torch::allclose(gb, br.grad(), 1e-5, 1e-3)) << (gb - br.grad()).abs().max();
  }
  }
}

TEST(WinogradConv3x3, RoundingErrorStaysWithinItsTilesBoundOnTheDirectBf16Convolutions) {
  // Winograd rounds the transformed input and kernel to bf16, where the direct convolution rounds
  // only the kernel. Measured error norms against the direct one's: 2x2 1.6x (7x7 maps) to 1.95x
  // (2x2 maps), 2x4 2.6x to 4.0x (4x4 maps), 4x4 3.4x to 10.6x (4x4 maps; 7.4x on 7x7).
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  for (const auto& [tile, bound] : {std::pair{WinogradTile::k2x2, 2.5}, std::pair{WinogradTile::k2x4, 5.0},
                                    std::pair{WinogradTile::k4x4, 13.0}}) {
    const ScopedWinogradBf16Tile use(tile);
    torch::manual_seed(14);
    for (const int64_t hw : {2, 4, 7}) {
      const at::Tensor x = at::relu(torch::randn({12, 128, hw, hw})).to(at::kBFloat16);
      const at::Tensor w = torch::randn({128, 128, 3, 3}) * 0.03;
      const at::Tensor ref = torch::conv2d(x.to(at::kFloat), w, {}, 1, 1);
      const at::Tensor winograd = WinogradConv3x3(x, w, {}, false).to(at::kFloat);
      const at::Tensor direct = torch::conv2d(x, w.to(at::kBFloat16), {}, 1, 1).to(at::kFloat);
      const double winograd_error = ((winograd - ref).norm() / ref.norm()).item<double>();
      const double direct_error = ((direct - ref).norm() / ref.norm()).item<double>();
      EXPECT_LT(winograd_error, bound * direct_error) << WinogradTileName(tile) << " tiles, " << hw << "x" << hw << " maps";
      if (std::getenv("SKILLGRID_PRINT_ERRORS") != nullptr) {
        std::printf("%s %ldx%ld: %.3fx\n", WinogradTileName(tile), hw, hw, winograd_error / direct_error);
      }
    }
  }
}

TEST(WinogradConv3x3, BlocksGiveEachBlockItsOwnKernelsResult) {
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  torch::manual_seed(15);
  // Blocks of 3, 0 and 5 rows of 7x7 maps: with 2x2 tiles the 5-row block spans two chunks.
  const std::vector<int64_t> rows = {3, 0, 5};
  const at::Tensor x = torch::randn({8, 32, 7, 7}).to(at::kBFloat16);
  const at::Tensor kernels = torch::randn({3, 64, 32, 3, 3}) * 0.1, biases = torch::randn({3, 64});
  for (const WinogradTile tile : kTiles) {
    const ScopedWinogradBf16Tile use(tile);
    for (const bool flip : {false, true}) {
      // Flipped, the kernels are read as (K, C_in', C_out', 3, 3): transposed for this input.
      const at::Tensor k = flip ? kernels.transpose(1, 2).contiguous() : kernels;
      const at::Tensor y = WinogradConv3x3Blocks(x, k, flip ? at::Tensor() : biases, rows, flip);
      ASSERT_EQ(y.sizes(), at::IntArrayRef({8, 64, 7, 7}));
      at::Tensor into = torch::full({8, 64, 7, 7}, 3.0).to(at::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast);
      WinogradConv3x3Blocks(x, k, flip ? at::Tensor() : biases, rows, flip, into);
      EXPECT_TRUE(torch::equal(into, y)) << WinogradTileName(tile);
      EXPECT_TRUE(torch::equal(y.narrow(0, 0, 3), WinogradConv3x3(x.narrow(0, 0, 3), k[0], flip ? at::Tensor() : biases[0], flip)))
          << WinogradTileName(tile) << (flip ? " flipped" : "");
      EXPECT_TRUE(torch::equal(y.narrow(0, 3, 5), WinogradConv3x3(x.narrow(0, 3, 5), k[2], flip ? at::Tensor() : biases[2], flip)))
          << WinogradTileName(tile) << (flip ? " flipped" : "");
    }
  }
  EXPECT_THROW(WinogradConv3x3Blocks(x, kernels, biases, {3, 4}, false), c10::Error);  // 7 rows of 8
  EXPECT_THROW(WinogradConv3x3Blocks(x, kernels, biases, {3, 5}, false), c10::Error);  // 2 blocks, 3 kernels
  at::Tensor wrong = torch::empty({8, 64, 7, 7});                                      // fp32 output
  EXPECT_THROW(WinogradConv3x3Blocks(x, kernels, biases, rows, false, wrong), c10::Error);
}

TEST(WinogradConv3x3, ResultsDoNotDependOnTheThreadCount) {
  if (!WinogradConvPreferred()) GTEST_SKIP() << "this CPU has no AVX512-BF16, or has AMX";
  torch::manual_seed(13);
  // 40 rows of 7x7: 640 2x2 tiles, so the forward's chunks and the gradient's tile blocks both split.
  const at::Tensor x = torch::randn({40, 64, 7, 7}).to(at::kBFloat16);
  const at::Tensor dy = torch::randn({40, 32, 7, 7}).to(at::kBFloat16);
  const at::Tensor w = torch::randn({32, 64, 3, 3}) * 0.1;
  for (const WinogradTile tile : kTiles) {
    const ScopedWinogradBf16Tile use(tile);
    testing::ExpectSameBitsForAnyThreadCount([&] {
      at::Tensor gw = torch::empty({32, 64, 3, 3}), gb = torch::empty({32});
      WinogradConv3x3WeightGrad(x, dy, gw, gb);
      return std::vector<at::Tensor>{WinogradConv3x3(x, w, at::Tensor(), false), WinogradConv3x3(dy, w, {}, true), gw, gb};
    });
  }
}

TEST(AddTaskLowRank, AddsEachRowsOwnTaskFactorsToTheBaseChannels) {
  torch::manual_seed(16);
  const int64_t n = 5, out = 32, r = 3, slots = 3, pad = 7;  // 32 base + 9 factor + 7 padding channels
  const at::Tensor b = torch::randn({slots * r, out});
  const at::Tensor slot = torch::tensor({2, 0, 2, 1, 0}, at::kLong);
  for (const auto type : {at::kFloat, at::kBFloat16}) {
    if (type == at::kBFloat16 && !WinogradConvPreferred()) continue;  // bf16 needs AVX512-BF16 without AMX
    const at::Tensor both =
        torch::randn({n, out + slots * r + pad, 3, 4}).to(type).contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor y = AddTaskLowRank(both, out, slot, r, b);
    ASSERT_EQ(y.sizes(), at::IntArrayRef({n, out, 3, 4}));
    EXPECT_EQ(y.scalar_type(), type);
    const at::Tensor f = both.to(at::kFloat);
    // bf16 rounds the output once; fp32 differs from einsum only in summation order.
    const double tolerance = type == at::kFloat ? 1e-5 : 1e-2;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = slot[i].item<int64_t>();
      const at::Tensor z = f[i].narrow(0, out + s * r, r);  // (r, 3, 4)
      const at::Tensor ref = f[i].narrow(0, 0, out) + at::einsum("khw,ko->ohw", {z, b.narrow(0, s * r, r)});
      EXPECT_TRUE(torch::allclose(y[i].to(at::kFloat), ref, tolerance, tolerance)) << "row " << i << " " << type;
    }
    EXPECT_THROW(AddTaskLowRank(both, out, torch::tensor({0, 1, 3, 0, 0}, at::kLong), r, b), c10::Error);  // slot 3
    EXPECT_THROW(AddTaskLowRank(both, out, slot.narrow(0, 0, 4), r, b), c10::Error);                     // 4 slots
  }
  if (WinogradConvPreferred()) {  // bf16's vector kernel needs out a multiple of 16
    const at::Tensor both = torch::randn({n, 48, 3, 4}).to(at::kBFloat16);
    EXPECT_THROW(AddTaskLowRank(both, 24, slot, r, b.narrow(1, 0, 24)), c10::Error);
  }
}

TEST(WinogradTile, NamesParseBackAndTheScopedTileWinsAndRestores) {
  for (const WinogradTile tile : kTiles) EXPECT_EQ(ParseWinogradTile(WinogradTileName(tile)), tile);
  EXPECT_FALSE(ParseWinogradTile("3x3").has_value());
  EXPECT_FALSE(ParseWinogradTile("").has_value());
  const WinogradTile before = WinogradBf16Tile();
  {
    const ScopedWinogradBf16Tile outer(WinogradTile::k4x4);
    EXPECT_EQ(WinogradBf16Tile(), WinogradTile::k4x4);
    {
      const ScopedWinogradBf16Tile inner(WinogradTile::k2x2);
      EXPECT_EQ(WinogradBf16Tile(), WinogradTile::k2x2);
    }
    EXPECT_EQ(WinogradBf16Tile(), WinogradTile::k4x4);
  }
  EXPECT_EQ(WinogradBf16Tile(), before);
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
