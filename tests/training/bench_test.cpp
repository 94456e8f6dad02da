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

TEST(Bench, ConvBenchTimesTheTrunkConvolutionAndBoundsItsError) {
  ConvBenchOptions o;
  o.rows = 4;
  o.channels = 32;
  o.iterations = 1;
  o.threads = 1;
  o.precision = "fp32";
  ConvBenchResult r = RunConvBench(o);
  EXPECT_EQ(r.forward_kernel, "onednn");
  EXPECT_LT(r.relative_error, 1e-5);  // the same fp32 convolution
  EXPECT_GT(r.forward_ms, 0.0);
  EXPECT_DOUBLE_EQ(r.direct_gflop, 2.0 * 4 * 32 * 32 * 9 * 49 / 1e9);
  EXPECT_NEAR(r.forward_gflops, r.direct_gflop / (r.forward_ms / 1e3), 1e-9 * r.forward_gflops);
  o.precision = "bf16";
  r = RunConvBench(o);
  // bf16 operands: ~0.2-0.5 % of the output's norm (Winograd's transforms add some).
  EXPECT_GT(r.relative_error, 1e-4);
  EXPECT_LT(r.relative_error, 2e-2);
  EXPECT_FALSE(r.weight_grad_kernel.empty());
  o.rows = 0;
  try {
    RunConvBench(o);
    ADD_FAILURE() << "rows 0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--rows must be >= 1, got 0");
  }
  o.rows = 4;
  o.precision = "fp16";
  EXPECT_THROW(RunConvBench(o), ConfigError);
}

TEST(Bench, TrainBenchPhasesAccountForTheRolloutAndTheUpdate) {
  // --phases: every phase of the loop appears, with the network's operators in its own phases.
  TrainBenchOptions o;
  o.model = "small";
  o.updates = 1;
  o.warmup = 0;
  o.num_envs = 4;
  o.threads = 1;
  o.levels = {"BabyAI-GoToRedBallNoDists-v0"};
  o.phases = true;
  const TrainBenchResult r = RunTrainBench(o);
  for (const char* phase : {"rollout.net", "rollout.env", "rollout.tail", "update.prep", "update.gather",
                            "update.forward", "update.backward", "update.optim"}) {
    EXPECT_NE(r.phase_report.find(std::string("\n") + phase + " "), std::string::npos) << phase << "\n" << r.phase_report;
  }
  EXPECT_NE(r.phase_report.find("top operators of update.backward per update:"), std::string::npos) << r.phase_report;
  EXPECT_EQ(r.batch_size, 4 * 40);  // BabyAI's 1280 capped by the rollout
  o.phases = false;
  o.batch_size = 80;
  const TrainBenchResult halves = RunTrainBench(o);
  EXPECT_TRUE(halves.phase_report.empty());
  EXPECT_EQ(halves.batch_size, 80);
  o.batch_size = 30;  // not a multiple of the recurrence (20)
  EXPECT_THROW(RunTrainBench(o), ConfigError);
  o.batch_size = -1;
  EXPECT_THROW(RunTrainBench(o), ConfigError);
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
