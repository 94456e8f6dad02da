// `skillgrid bench ...`: throughput benchmarks.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include "apps/commands.h"
#include "envs/level.h"
#include "envs/rng.h"
#include "envs/state_io.h"
#include "envs/vec_env.h"
#ifdef SKILLGRID_HAVE_TORCH
#include "skills/bench_skills.h"
#endif

namespace skillgrid::apps {
namespace {

struct EnvBenchOptions {
  std::string level = "BabyAI-GoToLocal-v0";  // level whose episodes are stepped
  double seconds = 3.0;                        // wall-clock duration
  int threads = 1;                             // worker threads
  uint64_t seed = 1;                           // episode and random-action seed
  int vec_envs = 0;  // 0: each thread steps its own env directly; N: one VecEnv of N envs
};

// Steps one env per thread directly: random actions, automatic reset through real level
// generation, full observation encoding after every step.
void DirectWorkers(const EnvBenchOptions& opt, std::atomic<bool>& stop,
                   std::vector<uint64_t>& steps, std::vector<uint64_t>& episodes) {
  auto worker = [&](int t) {
    envs::Rng rng(opt.seed, 1000 + static_cast<uint64_t>(t));
    envs::BabyAIEnv env(opt.level);
    env.Reset(opt.seed + static_cast<uint64_t>(t));
    uint8_t image[31 * 31 * 3];
    uint64_t n = 0, eps = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 4096; ++k) {
        const envs::StepResult r = env.Step(static_cast<envs::Action>(rng.Int(0, envs::kNumActions)));
        if (r.terminated || r.truncated) {
          ++eps;
          env.Reset();
        }
        env.Observe(image);
      }
      n += 4096;
    }
    steps[t] = n;
    episodes[t] = eps;
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < opt.threads; ++t) pool.emplace_back(worker, t);
  for (auto& th : pool) th.join();
}

// Steps a VecEnv of opt.vec_envs envs stepped by opt.threads threads.
void VecWorker(const EnvBenchOptions& opt, std::atomic<bool>& stop, uint64_t* steps,
               uint64_t* episodes) {
  envs::VecEnvConfig config;
  config.levels = {opt.level};
  config.num_envs = opt.vec_envs;
  config.num_threads = opt.threads;
  config.seed = opt.seed;
  envs::VecEnv venv(config);
  const int n = venv.num_envs();
  std::vector<uint8_t> images(static_cast<size_t>(n) * 147), terminated(n), truncated(n),
      success(n);
  std::vector<int32_t> directions(n), tokens(static_cast<size_t>(n) * config.max_mission_tokens),
      lengths(n), ep_lengths(n), actions(n);
  std::vector<float> rewards(n), returns(n);
  const envs::VecEnvBuffers buffers{images.data(),     directions.data(), tokens.data(),
                                    lengths.data(),    rewards.data(),    terminated.data(),
                                    truncated.data(),  returns.data(),    ep_lengths.data(),
                                    success.data()};
  venv.Reset(buffers);
  envs::Rng rng(opt.seed, 999);
  uint64_t total = 0, eps = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (auto& a : actions) a = rng.Int(0, envs::kNumActions);
    venv.Step(actions.data(), buffers);
    total += n;
    for (int i = 0; i < n; ++i) eps += terminated[i] | truncated[i];
  }
  *steps = total;
  *episodes = eps;
}

int RunEnvBench(const EnvBenchOptions& opt) {
  envs::MakeLevel(opt.level);  // unknown ids fail here, with suggestions
  std::atomic<bool> stop{false};
  std::vector<uint64_t> steps(opt.threads, 0), episodes(opt.threads, 0);
  const auto start = std::chrono::steady_clock::now();
  std::thread runner([&] {
    if (opt.vec_envs > 0) {
      VecWorker(opt, stop, &steps[0], &episodes[0]);
    } else {
      DirectWorkers(opt, stop, steps, episodes);
    }
  });
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
  stop = true;
  runner.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t total = 0, total_eps = 0;
  for (int t = 0; t < opt.threads; ++t) {
    total += steps[t];
    total_eps += episodes[t];
  }
  std::cout << "level: " << opt.level << "\nthreads: " << opt.threads << "\nmode: "
            << (opt.vec_envs > 0 ? "vec_env (" + std::to_string(opt.vec_envs) + " envs)"
                                 : std::string("direct (one env per thread)"))
            << "\nreset: level generation\nepisodes: " << total_eps << "\nsteps: " << total
            << "\nseconds: " << elapsed
            << "\nsteps_per_sec: " << static_cast<uint64_t>(total / elapsed) << "\n";
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Throughput benchmarks");
  bench->require_subcommand(1);

  auto env = std::make_shared<EnvBenchOptions>();
  CLI::App* cmd = bench->add_subcommand(
      "env",
      "Step random actions with automatic reset and full observation encoding; prints "
      "steps_per_sec (all threads together)");
  cmd->add_option("--level", env->level, "level id")->capture_default_str();
  cmd->add_option("--seconds", env->seconds, "duration in seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  cmd->add_option("--threads", env->threads, "worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--vec", env->vec_envs,
                  "step one VecEnv of this many envs (0: one env per thread, stepped directly)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  cmd->add_option("--seed", env->seed, "random-action seed")->capture_default_str();
  cmd->callback([env, exit_code] { *exit_code = RunEnvBench(*env); });

#ifdef SKILLGRID_HAVE_TORCH
  auto skills = std::make_shared<skills::SkillsBenchOptions>();
  CLI::App* skills_cmd = bench->add_subcommand(
      "skills",
      "Forward+backward of a skill-routed Linear for every inventory and router against a "
      "plain Linear; ends with poly_lowrank_vs_plain: R");
  skills_cmd->add_option("--iterations", skills->iterations, "timed iterations per layer")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  skills_cmd->add_option("--batch", skills->batch, "rows per batch")->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  skills_cmd->add_option("--threads", skills->threads, "intra-op threads")->capture_default_str()
      ->check(CLI::Range(1, 256));
  skills_cmd->callback([skills, exit_code] {
    skills::RunSkillsBench(*skills, std::cout);
    *exit_code = 0;
  });
#endif

  AddTrainBenchCommand(*bench, exit_code);  // `bench train` (apps/cmd_train.cpp)
  AddConvBenchCommand(*bench, exit_code);   // `bench conv` (apps/cmd_train.cpp)
}

}  // namespace skillgrid::apps
