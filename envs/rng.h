// Small, fast, seedable random number generator (PCG32) used for level generation and random
// actions. Deterministic across platforms: the same seed gives the same sequence.
#pragma once

#include <cstdint>

namespace skillgrid::envs {

/// PCG32 (O'Neill's PCG-XSH-RR): 64-bit state, 32-bit output; `stream` selects one of 2^63
/// independent sequences, so each env of a batch can have its own.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) { Seed(seed, stream); }

  /// Restarts the sequence for (seed, stream).
  void Seed(uint64_t seed, uint64_t stream = 0) {
    state_ = 0;
    inc_ = (stream << 1u) | 1u;
    Next();
    state_ += Mix(seed);
    Next();
  }

  /// Next 32 random bits.
  uint32_t Next() {
    const uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    const auto xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
    const auto rot = static_cast<uint32_t>(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
  }

  /// Uniform integer in [lo, hi); requires lo < hi. Unbiased (Lemire's method).
  int Int(int lo, int hi) {
    const auto range = static_cast<uint32_t>(hi - lo);
    uint64_t m = static_cast<uint64_t>(Next()) * range;
    auto low = static_cast<uint32_t>(m);
    if (low < range) {
      const uint32_t threshold = (-range) % range;
      while (low < threshold) {
        m = static_cast<uint64_t>(Next()) * range;
        low = static_cast<uint32_t>(m);
      }
    }
    return lo + static_cast<int>(m >> 32);
  }

  /// Fair coin.
  bool Bool() { return (Next() >> 31) != 0; }

  /// Uniform float in [0, 1).
  float Float() { return static_cast<float>(Next() >> 8) * (1.0f / 16777216.0f); }

 private:
  static uint64_t Mix(uint64_t z) {  // splitmix64 finaliser: decorrelates nearby seeds
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t state_ = 0;
  uint64_t inc_ = 1;
};

}  // namespace skillgrid::envs
