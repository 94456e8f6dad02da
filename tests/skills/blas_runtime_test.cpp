// blas_runtime: the test binaries start through ReexecWithTunedBlas (tests/torch_test_main.cpp),
// so by the time a test runs OpenBLAS must no longer be on its generic fallback kernels.
#include "skills/blas_runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include <torch/torch.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace skillgrid::skills {
namespace {

template <typename T>
void ExpectRowMajorGemmMatchesAten(at::ScalarType dtype, double tolerance) {
  torch::manual_seed(3);
  const int64_t m = 5, n = 7, k = 3, pad = 2;  // leading dimensions wider than the rows
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      for (const double beta : {0.0, 1.0}) {
        // Stored shapes of A and B, each with `pad` extra columns beyond the used ones.
        const at::Tensor a_store = torch::randn({ta ? k : m, (ta ? m : k) + pad}, dtype);
        const at::Tensor b_store = torch::randn({tb ? n : k, (tb ? k : n) + pad}, dtype);
        const at::Tensor a = a_store.narrow(1, 0, ta ? m : k), b = b_store.narrow(1, 0, tb ? k : n);
        const at::Tensor c0 = torch::randn({m, n + pad}, dtype);
        at::Tensor c = c0.clone();
        ASSERT_TRUE(RowMajorGemm(ta, tb, m, n, k, a_store.data_ptr<T>(), a_store.size(1), b_store.data_ptr<T>(),
                                 b_store.size(1), static_cast<T>(beta), c.data_ptr<T>(), c.size(1)));
        const at::Tensor expected = at::mm(ta ? a.t() : a, tb ? b.t() : b) + beta * c0.narrow(1, 0, n);
        EXPECT_TRUE(torch::allclose(c.narrow(1, 0, n), expected, tolerance, tolerance))
            << "trans_a " << ta << " trans_b " << tb << " beta " << beta;
        EXPECT_TRUE(torch::equal(c.narrow(1, n, pad), c0.narrow(1, n, pad))) << "wrote beyond the n used columns";
      }
    }
  }
}

TEST(BlasRuntime, RowMajorGemmMatchesAtenForEveryTransposeAndBeta) {
  // LibTorch always loads a Fortran BLAS, so the call must find one.
  ExpectRowMajorGemmMatchesAten<float>(at::kFloat, 1e-5);
  ExpectRowMajorGemmMatchesAten<double>(at::kDouble, 1e-12);
}

TEST(BlasRuntime, OpenBlasRunsTunedKernelsAfterTheStartupReexec) {
  const std::string core = BlasCoreName();
  if (core.empty()) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS";
  const char* choice = std::getenv("SKILLGRID_BLAS_CORETYPE");
  if (choice != nullptr) GTEST_SKIP() << "SKILLGRID_BLAS_CORETYPE=" << choice << " chose the kernels";
  // Nothing left to raise: either OpenBLAS knew this CPU, or the re-exec chose a core type, also
  // over an older OPENBLAS_CORETYPE from the environment (this project's VMs set Haswell).
  EXPECT_EQ(TunedBlasCoreType(), "") << "OpenBLAS still runs its narrower '" << core << "' kernels";
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
