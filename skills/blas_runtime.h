// Process-level tuning: the allocator, and the BLAS that LibTorch calls for every Linear.
// OpenBLAS picks its kernels when it loads and falls back to generic SSE3 ("Prescott") ones on
// CPUs newer than it knows, which made fp32 matmuls 3-4x slower on this project's machines.
#pragma once

#include <string>

namespace skillgrid::skills {

/// The kernel family OpenBLAS chose ("SkylakeX", "Prescott", ...), or "" when the BLAS in this
/// process is not OpenBLAS.
std::string BlasCoreName();

/// The OPENBLAS_CORETYPE that fits this CPU when OpenBLAS fell back to its generic kernels
/// ("SkylakeX" with AVX-512, "Haswell" with AVX2), else "" (nothing to fix).
std::string TunedBlasCoreType();

/// When TunedBlasCoreType() names a better kernel family and the environment does not choose one
/// already, re-executes this program (same arguments) with OPENBLAS_CORETYPE set; the kernels can
/// only be chosen at load time. Returns normally when there is nothing to do or exec fails.
/// Call first thing in main(), before any thread starts.
void ReexecWithTunedBlas(char** argv);

/// Keeps freed blocks up to 32 MB in the heap (glibc): by default blocks over 128 KB are mapped
/// and unmapped per allocation and the heap top is trimmed, so every training step page-faulted
/// its activations back in (the small model ran ~20 % faster without it). Returns false when the
/// C library does not take the setting. Call once, early in main().
bool KeepFreedMemoryInHeap();

/// Sets OpenBLAS's own thread count (no-op for other BLAS libraries). LibTorch parallelises
/// around its BLAS calls with its own pool; two pools spinning on two cores only fight.
void SetBlasThreads(int threads);

}  // namespace skillgrid::skills
