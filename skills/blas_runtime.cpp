#include "skills/blas_runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

namespace skillgrid::skills {
namespace {

// Looked up at run time so that the project links against any BLAS (reference BLAS, MKL,
// OpenBLAS): these symbols exist only in OpenBLAS.
template <typename Fn>
Fn LookUp(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

constexpr const char* kGuardVariable = "SKILLGRID_BLAS_REEXEC";
// "keep" leaves OpenBLAS's kernels as the environment chose them; any other value is the
// OPENBLAS_CORETYPE to run with.
constexpr const char* kChoiceVariable = "SKILLGRID_BLAS_CORETYPE";

// Vector width a kernel family of OpenBLAS uses: 2 = AVX-512, 1 = AVX2, 0 = older or unknown.
int CoreLevel(std::string core) {
  for (auto& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (core == "skylakex" || core == "cooperlake" || core == "sapphirerapids") return 2;
  if (core == "haswell" || core == "zen") return 1;
  return 0;
}

}  // namespace

std::string BlasCoreName() {
  using CoreNameFn = char* (*)();
  const auto core_name = LookUp<CoreNameFn>("openblas_get_corename");
  if (core_name == nullptr) return "";
  const char* name = core_name();
  return name == nullptr ? "" : name;
}

std::string TunedBlasCoreType() {
  int cpu_level = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    cpu_level = 2;
  } else if (__builtin_cpu_supports("avx2")) {
    cpu_level = 1;
  }
#endif
  const std::string core = BlasCoreName();
  if (core.empty() || CoreLevel(core) >= cpu_level) return "";
  return cpu_level == 2 ? "SkylakeX" : "Haswell";
}

void ReexecWithTunedBlas(char** argv) {
  if (std::getenv(kGuardVariable) != nullptr) return;
  const char* wanted = std::getenv(kChoiceVariable);
  if (wanted != nullptr && std::string(wanted) == "keep") return;
  const std::string core = wanted != nullptr && *wanted != '\0' ? std::string(wanted) : TunedBlasCoreType();
  if (core.empty()) return;
  const char* current = std::getenv("OPENBLAS_CORETYPE");
  if (current != nullptr && core == current) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  setenv(kGuardVariable, "1", 1);  // never loop, even if the exec'd image ignores the variable
  execv("/proc/self/exe", argv);
  // exec failed (no /proc): go on with the kernels OpenBLAS chose.
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
