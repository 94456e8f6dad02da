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

}  // namespace skillgrid::skills
