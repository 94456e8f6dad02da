// blas_runtime: the test binaries start through ReexecWithTunedBlas (tests/torch_test_main.cpp),
// so by the time a test runs OpenBLAS must no longer be on its generic fallback kernels.
#include "skills/blas_runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace skillgrid::skills {
namespace {

TEST(BlasRuntime, OpenBlasRunsTunedKernelsAfterTheStartupReexec) {
  const std::string core = BlasCoreName();
  if (core.empty()) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS";
  // Nothing left to fix: either OpenBLAS knew this CPU, or the re-exec chose a core type.
  EXPECT_EQ(TunedBlasCoreType(), "") << "OpenBLAS still runs its generic '" << core << "' kernels";
  const char* chosen = std::getenv("OPENBLAS_CORETYPE");
  if (chosen != nullptr) {
    EXPECT_NE(core, "Prescott") << "OPENBLAS_CORETYPE=" << chosen << " was ignored";
  }
}

TEST(BlasRuntime, AfterKeepFreedMemoryInHeapAFewMegabytesComeFromTheHeapNotFromMmap) {
#if !defined(__GLIBC__) || __GLIBC__ < 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ < 33)
  GTEST_SKIP() << "needs glibc >= 2.33 (mallinfo2)";
#else
  ASSERT_TRUE(KeepFreedMemoryInHeap());
  const size_t mapped_before = mallinfo2().hblks;
  const size_t bytes = 8u << 20;  // above glibc's default 128 KB threshold, below the new 32 MB
  void* block = std::malloc(bytes);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, bytes);
  EXPECT_EQ(mallinfo2().hblks, mapped_before) << "an 8 MB block was mapped on its own";
  std::free(block);
#endif
}

}  // namespace
}  // namespace skillgrid::skills
