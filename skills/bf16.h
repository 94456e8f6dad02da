// bfloat16 helpers shared by the mixed-precision code: the activation layout of bf16
// convolutions (oneDNN's AMX/AVX512-BF16 kernels, the AMX weight gradient and agents/'s fused
// trunk all read channels-last bfloat16) and scalar conversions that vectorise in hand loops.
#pragma once

#include <cstdint>
#include <cstring>

#include <ATen/core/Tensor.h>

namespace skillgrid::skills {

/// `t` as a contiguous channels-last bfloat16 tensor (no copy when it already is one).
inline at::Tensor ChannelsLastBf16(const at::Tensor& t) {
  return t.to(at::kBFloat16, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::ChannelsLast)
      .contiguous(at::MemoryFormat::ChannelsLast);
}

/// The float a bfloat16 bit pattern holds (exact).
inline float Bf16BitsToFloat(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

/// `f` rounded to the nearest bfloat16 (ties to even), NaN kept NaN, as c10::BFloat16 rounds.
inline uint16_t FloatToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return f != f ? uint16_t{0x7FC0} : static_cast<uint16_t>(rounded);
}

}  // namespace skillgrid::skills
