// main() of the LibTorch test binaries: gtest's, after giving OpenBLAS its tuned kernels (see
// skills/blas_runtime.h) so that training tests run at the speed users get from the CLI.
#include <gtest/gtest.h>

#include "skills/blas_runtime.h"

int main(int argc, char** argv) {
  skillgrid::skills::ReexecWithTunedBlas(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
