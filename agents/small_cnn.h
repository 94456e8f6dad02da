// The small preset's image trunk as one CPU op: three k x k convolutions with per-task kernels,
// ReLU and a 2x2 max-pool, forward and backward by hand over NHWC buffers. Autograd over the
// composite (one oneDNN call per task and layer, NCHW max-pool, ReLU nodes) cost more than the
// rest of the small model's update together.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace skillgrid::agents {

/// One convolution (stride 1, no padding) of the trunk.
struct TrunkConv {
  /// (K, C_out, C_in, k, k): K = 1 serves every row, else kernel b serves row block b.
  at::Tensor kernels;
  /// (K, C_out), or undefined for no bias.
  at::Tensor biases;
};

/// Whether SmallCnnTrunk can run on tensors like `reference` (a CPU float or double tensor).
bool SmallCnnTrunkSupports(const at::Tensor& reference);

/// relu(conv3(relu(conv2(maxpool2x2(relu(conv1(x))))))) flattened to (N, C3 * H3 * W3) in NCHW
/// order (as Conv2d outputs flattened), for images (N, H, W, C0) in NHWC order whose rows come in
/// consecutive blocks of `rows_per_block` (summing to N). Gradients reach the kernels and biases,
/// not the images. Throws c10::Error naming the shapes when they do not chain.
at::Tensor SmallCnnTrunk(const at::Tensor& images, const TrunkConv& conv1, const TrunkConv& conv2,
                         const TrunkConv& conv3, const std::vector<int64_t>& rows_per_block);

}  // namespace skillgrid::agents
