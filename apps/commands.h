// The skillgrid CLI's subcommands. Each Add*Command registers one subcommand on the app; its
// callback stores the process exit status in *exit_code and reports errors as one line.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace skillgrid::apps {

/// `skillgrid replay`: replays recorded reference episodes and compares every step.
void AddReplayCommand(CLI::App& app, int* exit_code);
/// `skillgrid render-state`: draws a state JSON file to PNG.
void AddRenderStateCommand(CLI::App& app, int* exit_code);
/// `skillgrid levels`: lists every level id with a one-line description.
void AddLevelsCommand(CLI::App& app, int* exit_code);
/// `skillgrid bench ...`: throughput benchmarks (env, and skills when built with LibTorch).
void AddBenchCommand(CLI::App& app, int* exit_code);
/// `skillgrid bot`: runs the expert bot on seeded episodes of a level (or all) and reports its
/// success rate; --out saves the episodes as conformance traces.
void AddBotCommand(CLI::App& app, int* exit_code);
/// `skillgrid view`: SFML window with live episodes per task, routing heatmaps and the task
/// hierarchy of a run (or manual play of a level).
void AddViewCommand(CLI::App& app, int* exit_code);
/// `skillgrid render`: headless exports of a run: episode GIF, routing heatmap, task hierarchy.
void AddRenderCommand(CLI::App& app, int* exit_code);
/// `skillgrid plot`: writes a run's plots/ (learning curves, eval curves, routing heatmaps) and
/// prints the paths written.
void AddPlotCommand(CLI::App& app, int* exit_code);
/// `skillgrid train`: the main job.
void AddTrainCommand(CLI::App& app, int* exit_code);
/// `skillgrid eval`: per-level success of a trained run (ends with `success_rate: X`).
void AddEvalCommand(CLI::App& app, int* exit_code);
/// `skillgrid bench train`: whole-loop PPO throughput, registered under the `bench` command.
void AddTrainBenchCommand(CLI::App& bench, int* exit_code);
/// `skillgrid bench conv`: one trunk convolution's forward and backward against the machine's peak.
void AddConvBenchCommand(CLI::App& bench, int* exit_code);

/// The items of a comma-separated flag value, spaces and empty items dropped ("a, b,,c" -> a b c).
std::vector<std::string> SplitList(const std::string& s);

/// A level id from a short name ("GoToLocal" -> "BabyAI-GoToLocal-v0"); full ids pass unchanged.
std::string FullLevelId(const std::string& name);

/// Default path of the conformance traces: ../shared/conformance/babyai_public.jsonl beside the
/// checkout (as configured at build time), else relative to the working directory.
std::string DefaultTracesPath();

}  // namespace skillgrid::apps
