// blas_runtime: the test binaries start through ReexecWithTunedBlas (tests/torch_test_main.cpp),
// so by the time a test runs OpenBLAS must no longer be on its generic fallback kernels.
#include "skills/blas_runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace skillgrid::skills {
namespace {

TEST(BlasRuntime, OpenBlasRunsTunedKernelsAfterTheStartupReexec) {
  const std::string core = BlasCoreName();
  if (core.empty()) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS";
  // Nothing left to fix: either OpenBLAS knew this CPU, or the re-exec chose a core type.
  EXPECT_EQ(TunedBlasCoreType(), "") << "OpenBLAS still runs its generic '" << core << "' kernels";
  const char* chosen = std::getenv("OPENBLAS_CORETYPE");
  if (chosen != nullptr) EXPECT_NE(core, "Prescott") << "OPENBLAS_CORETYPE=" << chosen << " was ignored";
}

}  // namespace
}  // namespace skillgrid::skills
