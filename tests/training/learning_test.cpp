// Integration: PPO with the small model learns a small level to >= 0.9 success within the
// 2-minute, 2-core test budget.
#include <gtest/gtest.h>

#include <chrono>

#include "agents/actor_critic.h"
#include "training/evaluate.h"
#include "training/trainer.h"
#include "tests/cuda_util.h"

namespace skillgrid::training {
namespace {

// Trains until the greedy policy solves the level (>= 0.9 success) or the budget ends.
void ExpectPpoSolvesGoToRedBallNoDists(const std::string& device) {
  TrainConfig c;
  c.device = device;
  c.run_dir = "";
  c.levels = {"BabyAI-GoToRedBallNoDists-v0"};
  c.model = "small";
  c.router = "none";
  c.threads = 2;
  c.num_envs = 32;
  c.frames_per_env = 40;
  c.recurrence = 10;
  c.batch_size = 320;
  c.epochs = 4;
  c.lr = 1e-3;
  c.gae_lambda = 0.95;
  c.frames = 400'000;
  c.eval_interval = 0;
  c.progress = false;
  c.seed = 1;
  Trainer trainer(c, false);
  const auto start = std::chrono::steady_clock::now();
  double success = 0.0;
  // Train in stages and stop as soon as the greedy policy is good enough.
  while (trainer.frames() < c.frames) {
    for (int i = 0; i < 20 && trainer.frames() < c.frames; ++i) trainer.Step();
    if (trainer.last_stats().mean_success < 0.8) continue;
    success = EvaluatePolicy(trainer.model(), c.levels, 200, 12345, /*argmax=*/true, 2).success_rate;
    if (success >= 0.9) break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::testing::Test::RecordProperty("frames", std::to_string(trainer.frames()));
  ::testing::Test::RecordProperty("seconds", std::to_string(seconds));
  std::printf("[ learning ] %lld frames, %.1f s, greedy success %.3f, rolling success %.3f\n",
              static_cast<long long>(trainer.frames()), seconds, success, trainer.last_stats().mean_success);
  EXPECT_GE(success, 0.9);
}

TEST(Learning, PpoSmallModelSolvesGoToRedBallNoDists) { ExpectPpoSolvesGoToRedBallNoDists("cpu"); }

TEST(Learning_CUDA, PpoSmallModelSolvesGoToRedBallNoDistsOnTheDevice) {
  SKILLGRID_REQUIRE_CUDA();
  ExpectPpoSolvesGoToRedBallNoDists("cuda");
}

}  // namespace
}  // namespace skillgrid::training
