// The skillgrid CLI's subcommands. Each Add*Command registers one subcommand on the app; its
// callback stores the process exit status in *exit_code and reports errors as one line.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace skillgrid::apps {

/// `skillgrid replay`: replays recorded reference episodes and compares every step.
void AddReplayCommand(CLI::App& app, int* exit_code);
/// `skillgrid render-state`: draws a state JSON file to PNG.
void AddRenderStateCommand(CLI::App& app, int* exit_code);
/// `skillgrid bench ...`: throughput benchmarks (env, and skills when built with LibTorch).
void AddBenchCommand(CLI::App& app, int* exit_code);
/// `skillgrid train`: the main job.
void AddTrainCommand(CLI::App& app, int* exit_code);

/// Default path of the conformance traces: ../shared/conformance/babyai_public.jsonl beside the
/// checkout (as configured at build time), else relative to the working directory.
std::string DefaultTracesPath();

}  // namespace skillgrid::apps
