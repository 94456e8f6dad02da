// The activation layout of bf16 convolutions: oneDNN's AMX/AVX512-BF16 kernels, the AMX
// weight gradient and agents/'s fused trunk kernels all read channels-last bfloat16.
#pragma once

#include <ATen/core/Tensor.h>

namespace skillgrid::skills {

/// `t` as a contiguous channels-last bfloat16 tensor (no copy when it already is one).
inline at::Tensor ChannelsLastBf16(const at::Tensor& t) {
  return t.to(at::kBFloat16, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::ChannelsLast)
      .contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace skillgrid::skills
