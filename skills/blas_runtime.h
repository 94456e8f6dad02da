// Process-level tuning: the allocator, and the BLAS that LibTorch calls for every Linear.
// OpenBLAS picks its kernels when it loads and falls back to generic SSE3 ("Prescott") ones on
// CPUs newer than it knows, which made fp32 matmuls 3-4x slower on this project's machines; the
// VM image these machines boot also sets OPENBLAS_CORETYPE=Haswell on AVX-512 CPUs, whose
// kernels ran the small model's training ~20 % slower than SkylakeX's.
#pragma once

#include <cstdint>
#include <string>

namespace skillgrid::skills {

/// The kernel family OpenBLAS chose ("SkylakeX", "Prescott", ...), or "" when the BLAS in this
/// process is not OpenBLAS.
std::string BlasCoreName();

/// The OPENBLAS_CORETYPE that fits this CPU when OpenBLAS runs kernels for narrower vectors than
/// the CPU has ("SkylakeX" with AVX-512, "Haswell" with AVX2), else "" (nothing to raise).
std::string TunedBlasCoreType();

/// When TunedBlasCoreType() names a better kernel family, re-executes this program (same
/// arguments) with OPENBLAS_CORETYPE set to it, also over an older one the environment set; the
/// kernels can only be chosen at load time. SKILLGRID_BLAS_CORETYPE=keep leaves the environment's
/// choice alone, SKILLGRID_BLAS_CORETYPE=NAME runs with NAME. Returns normally when there is
/// nothing to do or exec fails. Call first thing in main(), before any thread starts.
void ReexecWithTunedBlas(char** argv);

/// Keeps freed blocks up to 32 MB in the heap (glibc): by default blocks over 128 KB are mapped
/// and unmapped per allocation and the heap top is trimmed, so every training step page-faulted
/// its activations back in (the small model ran ~20 % faster without it). Returns false when the
/// C library does not take the setting. Call once, early in main().
bool KeepFreedMemoryInHeap();

/// Row-major C (m x n) = op(A) op(B) + beta * C through the Fortran BLAS loaded with LibTorch,
/// with no ATen op around it (for loops of small products, where each op's ~5 us overhead costs
/// more than the product). op(A) is A (m x k, row stride lda) or, with trans_a, the transpose of
/// A stored (k x m); likewise op(B). Returns false, computing nothing, when no BLAS is loaded.
bool RowMajorGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
/// The double-precision form of RowMajorGemm.
bool RowMajorGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
                  const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

/// Sets OpenBLAS's own thread count (no-op for other BLAS libraries). LibTorch parallelises
/// around its BLAS calls with its own pool; two pools spinning on two cores only fight.
void SetBlasThreads(int threads);

}  // namespace skillgrid::skills
