// Max-pooling fused with the ReLU that follows (or precedes) it in the BabyAI image trunks.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace skillgrid::agents {

/// relu(max_pool2d(x, kernel, stride)) for x (N, C, H, W), no padding, floor mode: the same values
/// and gradients as torch's ops (the gradient goes to the first maximum of each window, in row
/// scan order, and only where the maximum is positive). Since relu is monotonic this also equals
/// max_pool2d(relu(x)). On CPU (float, double) it is one loop forward and one backward; torch's
/// max-pool kernel in LibTorch 1.13 spends ~1 ns per input element on small planes.
at::Tensor MaxPoolRelu(const at::Tensor& x, int64_t kernel, int64_t stride);

}  // namespace skillgrid::agents
