#include "skills/blas_runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace skillgrid::skills {
namespace {

// Looked up at run time so that the project links against any BLAS (reference BLAS, MKL,
// OpenBLAS): these symbols exist only in OpenBLAS.
template <typename Fn>
Fn LookUp(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

constexpr const char* kGuardVariable = "SKILLGRID_BLAS_REEXEC";

}  // namespace

std::string BlasCoreName() {
  using CoreNameFn = char* (*)();
  const auto core_name = LookUp<CoreNameFn>("openblas_get_corename");
  if (core_name == nullptr) return "";
  const char* name = core_name();
  return name == nullptr ? "" : name;
}

std::string TunedBlasCoreType() {
  std::string core = BlasCoreName();
  for (auto& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Only the generic fallbacks are replaced; a core OpenBLAS recognised is left alone.
  if (core != "prescott" && core != "core2" && core != "katmai" && core != "unknown") return "";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2")) return "Haswell";
#endif
  return "";
}

void ReexecWithTunedBlas(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv(kGuardVariable) != nullptr) return;
  const std::string core = TunedBlasCoreType();
  if (core.empty()) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  setenv(kGuardVariable, "1", 1);  // never loop, even if the exec'd image ignores the variable
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): go on with the generic kernels.
}

bool KeepFreedMemoryInHeap() {
#ifdef __GLIBC__
  // 32 MB is the largest mmap threshold glibc accepts; freed memory stays until 1 GB is spare.
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
  return false;
#endif
}

void SetBlasThreads(int threads) {
  using SetThreadsFn = void (*)(int);
  const auto set_threads = LookUp<SetThreadsFn>("openblas_set_num_threads");
  if (set_threads != nullptr && threads >= 1) set_threads(threads);
}

namespace {

// Fortran BLAS ?gemm_ (column-major; character flags passed by pointer, lengths omitted as
// LibTorch itself calls them).
template <typename T>
using FortranGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const T*, const T*,
                             const int*, const T*, const int*, const T*, T*, const int*);

template <typename T>
bool CallRowMajorGemm(FortranGemm<T> gemm, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a,
                      int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (gemm == nullptr) return false;
  if (m == 0 || n == 0) return true;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T over the same memory.
  const char tb = trans_b ? 'T' : 'N', ta = trans_a ? 'T' : 'N';
  const int mi = static_cast<int>(n), ni = static_cast<int>(m), ki = static_cast<int>(k);
  const int ldb_i = static_cast<int>(ldb), lda_i = static_cast<int>(lda), ldc_i = static_cast<int>(ldc);
  const T one = 1;
  gemm(&tb, &ta, &mi, &ni, &ki, &one, b, &ldb_i, a, &lda_i, &beta, c, &ldc_i);
  return true;
}

}  // namespace

bool RowMajorGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  static const auto gemm = LookUp<FortranGemm<float>>("sgemm_");
  return CallRowMajorGemm(gemm, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

bool RowMajorGemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
                  const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  static const auto gemm = LookUp<FortranGemm<double>>("dgemm_");
  return CallRowMajorGemm(gemm, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace skillgrid::skills
