// blas_runtime: the test binaries start through ReexecWithTunedBlas (tests/torch_test_main.cpp),
// so by the time a test runs OpenBLAS must run the kernels it chose: the widest this CPU has, or
// what SKILLGRID_BLAS_CORETYPE asks for.
#include "skills/blas_runtime.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(BlasRuntime, OpenBlasRunsTheKernelsTheStartupReexecChose) {
  const std::string core = BlasCoreName();
  if (core.empty()) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS";
  const char* choice = std::getenv("SKILLGRID_BLAS_CORETYPE");
  const char* environment = std::getenv("OPENBLAS_CORETYPE");
  if (choice != nullptr && std::string(choice) == "keep") {
    if (environment == nullptr) GTEST_SKIP() << "OpenBLAS chose its own kernels";
    EXPECT_EQ(Lower(core), Lower(environment)) << "SKILLGRID_BLAS_CORETYPE=keep must keep OPENBLAS_CORETYPE";
  } else if (choice != nullptr) {
    EXPECT_EQ(Lower(core), Lower(choice));
  } else {
    // Nothing left to raise: either OpenBLAS knew this CPU, or the re-exec chose a core type, also
    // over an older OPENBLAS_CORETYPE from the environment (this project's VMs set Haswell).
    EXPECT_EQ(TunedBlasCoreType(), "") << "OpenBLAS still runs its narrower '" << core << "' kernels";
  }
}

// Runs this test binary again on OpenBlasRunsTheKernelsTheStartupReexecChose with
// OPENBLAS_CORETYPE=Prescott (OpenBLAS's generic SSE3 kernels) and the given
// SKILLGRID_BLAS_CORETYPE (null: unset); returns its exit status.
int RunCoreCheckChild(const char* choice) {
  // The child's environment and arguments are built here: between fork and exec only
  // async-signal-safe calls are allowed (this process has BLAS and OpenMP threads).
  std::vector<std::string> env = {"OPENBLAS_CORETYPE=Prescott"};
  if (choice != nullptr) env.push_back(std::string("SKILLGRID_BLAS_CORETYPE=") + choice);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (name != "OPENBLAS_CORETYPE" && name != "SKILLGRID_BLAS_CORETYPE" && name != "SKILLGRID_BLAS_REEXEC") {
      env.push_back(entry);
    }
  }
  std::vector<char*> envp;
  for (auto& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", filter = "--gtest_filter=BlasRuntime.OpenBlasRunsTheKernelsTheStartupReexecChose";
  char* argv[] = {self.data(), filter.data(), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(BlasRuntime, StartupRaisesAnOlderCoreTypeFromTheEnvironmentUnlessToldToKeepIt) {
  if (BlasCoreName().empty()) GTEST_SKIP() << "the BLAS in this process is not OpenBLAS";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no AVX2: Prescott-class kernels are all this CPU runs";
#else
  GTEST_SKIP() << "core types are chosen on x86 only";
#endif
  // Each child's test checks what kernels OpenBLAS runs there; exit status 0 means it passed.
  EXPECT_EQ(RunCoreCheckChild(nullptr), 0) << "Prescott from the environment was not raised";
  EXPECT_EQ(RunCoreCheckChild("keep"), 0) << "SKILLGRID_BLAS_CORETYPE=keep did not keep Prescott";
  EXPECT_EQ(RunCoreCheckChild("Haswell"), 0) << "SKILLGRID_BLAS_CORETYPE=Haswell was not applied";
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
