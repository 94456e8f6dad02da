// training/bench: the FLOP model behind the GFLOP/s figure, and the peak it is compared with.
#include "training/bench.h"

#include <gtest/gtest.h>

#include "tests/cuda_util.h"

namespace skillgrid::training {
namespace {

TEST(Bench, BowEndpoolResForwardFlopsAreDominatedByItsSixConvolutions) {
  // Six 3x3 128->128 convolutions over 7x7: 6 * 2 * 128 * 128 * 9 * 49 = 86.7 MFLOP.
  const double convs = 6.0 * 2 * 128 * 128 * 9 * 49;
  const double f = ForwardFlopsPerFrame("bow_endpool_res");
  EXPECT_GT(f, convs);
  EXPECT_LT(f, convs * 1.01);
  EXPECT_LT(ForwardFlopsPerFrame("small"), f / 100);
}

TEST(Bench, PeakScalesWithCoresAndExplainsItself) {
  std::string one, two;
  const double p1 = EstimatePeakGflops(1, &one);
  const double p2 = EstimatePeakGflops(2, &two);
  if (p1 == 0.0) GTEST_SKIP() << one;
  EXPECT_DOUBLE_EQ(p2, 2 * p1);
  EXPECT_NE(two.find("2 cores"), std::string::npos) << two;
  EXPECT_EQ(EstimatePeakGflops(0, &one), 0.0);
}

TEST(Bench, Bf16PeakIsAtLeastTheFp32PeakAndScalesWithCores) {
  std::string fp32, one, two;
  const double p32 = EstimatePeakGflops(1, &fp32);
  const double p1 = EstimatePeakGflopsBf16(1, &one);
  const double p2 = EstimatePeakGflopsBf16(2, &two);
  if (p32 == 0.0) GTEST_SKIP() << fp32;
  EXPECT_GE(p1, p32);  // AMX 1024 or AVX512-BF16 128 FLOP/cycle, else the fp32 figure
  EXPECT_DOUBLE_EQ(p2, 2 * p1);
  EXPECT_NE(two.find("flop/cycle"), std::string::npos) << two;
}


TEST(Bench_CUDA, TrainBenchRunsTheWholeLoopOnTheDevice) {
  // `skillgrid bench train --device cuda` (the 50,000 frames/s target of bow_endpool_res):
  // one short timed update of each model, with the frames it says it timed.
  SKILLGRID_REQUIRE_CUDA();
  for (const std::string model : {"small", "bow_endpool_res"}) {
    TrainBenchOptions o;
    o.model = model;
    o.device = "cuda";
    o.updates = 1;
    o.warmup = 1;
    o.num_envs = 16;
    const TrainBenchResult r = RunTrainBench(o);
    EXPECT_GT(r.frames_per_sec, 0.0) << model;
    EXPECT_EQ(r.frames, 16 * 40) << model;  // one update of 16 envs x 40 frames (BabyAI's rollout)
  }
}

}  // namespace
}  // namespace skillgrid::training
