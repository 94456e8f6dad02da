// `skillgrid bench ...`: throughput benchmarks.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "apps/commands.h"
#include "envs/episode.h"
#include "envs/rng.h"
#include "envs/state_io.h"

namespace skillgrid::apps {
namespace {

struct EnvBenchOptions {
  std::string level = "BabyAI-GoToLocal-v0";  // level whose episodes are stepped
  double seconds = 3.0;                        // wall-clock duration
  int threads = 1;                             // worker threads, one episode each
  std::string traces;                          // where recorded initial states come from
  uint64_t seed = 1;                           // random-action seed
};

// Reset source: until the level generators exist, episodes restart from the level's recorded
// initial states (round robin over the trace file's episodes of that level).
std::vector<envs::EpisodeState> LoadLevelStates(const EnvBenchOptions& opt) {
  std::ifstream in(opt.traces);
  if (!in) throw std::runtime_error("cannot open traces file '" + opt.traces + "'");
  std::vector<envs::EpisodeState> states;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"" + opt.level + "\"") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("level", "") != opt.level) continue;
    states.push_back(envs::EpisodeStateFromJson(j.at("initial")));
  }
  if (states.empty()) {
    throw std::runtime_error("no recorded episodes of level '" + opt.level + "' in " + opt.traces);
  }
  return states;
}

int RunEnvBench(const EnvBenchOptions& opt) {
  const std::vector<envs::EpisodeState> states = LoadLevelStates(opt);
  std::atomic<bool> stop{false};
  std::vector<uint64_t> steps(opt.threads, 0), episodes(opt.threads, 0);
  auto worker = [&](int t) {
    envs::Rng rng(opt.seed, static_cast<uint64_t>(t));
    envs::Episode ep;
    size_t next_state = static_cast<size_t>(t) % states.size();
    ep.Start(states[next_state].world, states[next_state].instr);
    uint8_t image[31 * 31 * 3];
    uint64_t n = 0, eps = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 4096; ++k) {
        const envs::StepResult r = ep.Step(static_cast<envs::Action>(rng.Int(0, envs::kNumActions)));
        ep.Observe(image);
        if (r.terminated || r.truncated) {
          ++eps;
          next_state = (next_state + 1) % states.size();
          ep.Start(states[next_state].world, states[next_state].instr);
          ep.Observe(image);
        }
      }
      n += 4096;
    }
    steps[t] = n;
    episodes[t] = eps;
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < opt.threads; ++t) pool.emplace_back(worker, t);
  std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t total = 0, total_eps = 0;
  for (int t = 0; t < opt.threads; ++t) {
    total += steps[t];
    total_eps += episodes[t];
  }
  std::cout << "level: " << opt.level << "\nthreads: " << opt.threads
            << "\nreset: recorded initial states (" << states.size() << ")\n"
            << "episodes: " << total_eps << "\nsteps: " << total << "\nseconds: " << elapsed
            << "\nsteps_per_sec: " << static_cast<uint64_t>(total / elapsed) << "\n";
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Throughput benchmarks");
  bench->require_subcommand(1);

  auto env = std::make_shared<EnvBenchOptions>();
  env->traces = DefaultTracesPath();
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
  cmd->add_option("--traces", env->traces, "recorded episodes used as reset states")
      ->capture_default_str();
  cmd->add_option("--seed", env->seed, "random-action seed")->capture_default_str();
  cmd->callback([env, exit_code] { *exit_code = RunEnvBench(*env); });
}

}  // namespace skillgrid::apps
