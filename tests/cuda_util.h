// CUDA tests: suites named *_CUDA run where LibTorch sees a CUDA device and skip elsewhere, so the
// suite passes on CPU-only machines; `ctest -R _CUDA` (scripts/device_check.sh) runs them on a GPU.
#pragma once

#include <gtest/gtest.h>
#include <torch/cuda.h>

/// Skips the calling test, with the reason, when no CUDA device is visible to this LibTorch.
#define SKILLGRID_REQUIRE_CUDA()                                                     \
  do {                                                                               \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible to LibTorch"; \
  } while (0)

namespace skillgrid::cuda_test {

/// Tolerance of CUDA-against-CPU comparisons in fp32: cuDNN may run fp32 convolutions in TF32
/// (10-bit mantissa, LibTorch's default), ~1e-3 relative per layer; a wrong layout or a lost term
/// is off by O(1).
constexpr double kCudaTolerance = 2e-2;

/// max |a - b| / (max |b| + 1e-6), with `a` brought to the host.
inline double RelativeMaxError(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor ac = a.detach().to(at::kCPU).to(at::kDouble), bc = b.detach().to(at::kCPU).to(at::kDouble);
  return (ac - bc).abs().max().item<double>() / (bc.abs().max().item<double>() + 1e-6);
}

}  // namespace skillgrid::cuda_test
