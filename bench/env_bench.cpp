// Micro-benchmarks of the engine's hot path: step, observation, reset.
// Run: build/bin/env_bench  (reads a GoToLocal state from ../shared/conformance).
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "envs/episode.h"
#include "envs/render.h"
#include "envs/rng.h"

namespace {

using namespace skillgrid::envs;

// The first recorded GoToLocal initial state.
const EpisodeState& GoToLocalState() {
  static const EpisodeState state = [] {
    std::ifstream in(std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("\"BabyAI-GoToLocal-v0\"") == std::string::npos) continue;
      return EpisodeStateFromJson(nlohmann::json::parse(line).at("initial"));
    }
    throw std::runtime_error("no GoToLocal episode in the conformance traces");
  }();
  return state;
}

void BM_Observe(benchmark::State& st) {
  Episode ep;
  ep.Start(GoToLocalState().world, GoToLocalState().instr);
  uint8_t image[147];
  for (auto _ : st) {
    ep.Observe(image);
    benchmark::DoNotOptimize(image);
  }
}
BENCHMARK(BM_Observe);

// Turning steps never end an episode, so this measures step + verify alone.
void BM_StepTurn(benchmark::State& st) {
  Episode ep;
  ep.Start(GoToLocalState().world, GoToLocalState().instr);
  ep.mutable_world().max_steps = 1 << 30;
  for (auto _ : st) benchmark::DoNotOptimize(ep.Step(Action::kLeft));
}
BENCHMARK(BM_StepTurn);

void BM_StepObserveRandom(benchmark::State& st) {
  const EpisodeState& s = GoToLocalState();
  Episode ep;
  ep.Start(s.world, s.instr);
  Rng rng(1);
  uint8_t image[147];
  for (auto _ : st) {
    StepResult r = ep.Step(static_cast<Action>(rng.Int(0, kNumActions)));
    ep.Observe(image);
    if (r.terminated || r.truncated) ep.Start(s.world, s.instr);
    benchmark::DoNotOptimize(image);
  }
}
BENCHMARK(BM_StepObserveRandom);

void BM_ResetFromState(benchmark::State& st) {
  const EpisodeState& s = GoToLocalState();
  Episode ep;
  for (auto _ : st) {
    ep.Start(s.world, s.instr);
    benchmark::DoNotOptimize(ep);
  }
}
BENCHMARK(BM_ResetFromState);

// Full-grid RGB render at Minigrid's 32 px tiles (the viewer's and GIF export's cost).
void BM_RenderGrid(benchmark::State& st) {
  const EpisodeState& s = GoToLocalState();
  RgbImage image;
  for (auto _ : st) {
    RenderGrid(s.world, RenderOptions(), &image);
    benchmark::DoNotOptimize(image.pixels.data());
  }
}
BENCHMARK(BM_RenderGrid);

}  // namespace

BENCHMARK_MAIN();
