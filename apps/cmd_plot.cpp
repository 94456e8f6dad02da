// `skillgrid plot`: writes a run directory's plots/ (learning curves from log.csv, evaluation
// curves from eval.csv, the routing heatmaps from skills.json) and prints the paths written.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "apps/commands.h"

#ifdef SKILLGRID_HAVE_VIZ
#include "viz/plots.h"
#endif

namespace skillgrid::apps {
namespace {

struct PlotOptions {
  std::string run;              // run directory
  std::string x = "frames";     // x axis of the curves
  int width = 960;              // chart size
  int height = 540;
};

int RunPlot(const PlotOptions& o) {
#ifdef SKILLGRID_HAVE_VIZ
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(o.run) / "log.csv")) {
    std::cerr << "skillgrid plot: error: " << o.run << " has no log.csv (not a training run directory?)\n";
    return 2;
  }
  try {
    viz::RunPlotOptions po;
    po.x_column = o.x;
    po.width = o.width;
    po.height = o.height;
    const viz::RunPlots plots = viz::WriteRunPlots(o.run, po);
    for (const auto& p : plots.written()) std::cout << "wrote " << p << "\n";
    for (const auto& e : plots.errors) std::cerr << "skillgrid plot: error: " << e << "\n";
    return plots.errors.empty() ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "skillgrid plot: error: " << e.what() << "\n";
    return 2;
  }
#else
  (void)o;
  std::cerr << "skillgrid plot: error: this build has no viz/ (Eigen 3 was not found at build time)\n";
  return 2;
#endif
}

}  // namespace

void AddPlotCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<PlotOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Write a run's plots/: learning curves, evaluation curves and routing heatmaps (PNG)");
  cmd->add_option("--run", o->run, "run directory (log.csv, eval.csv, skills.json)")->required();
  cmd->add_option("--x", o->x, "x axis of the curves")
      ->check(CLI::IsMember({"frames", "episodes"}))
      ->capture_default_str();
  cmd->add_option("--width", o->width, "chart width in pixels")->capture_default_str()->check(CLI::Range(320, 8192));
  cmd->add_option("--height", o->height, "chart height in pixels")->capture_default_str()->check(CLI::Range(200, 8192));
  cmd->callback([o, exit_code] { *exit_code = RunPlot(*o); });
}

}  // namespace skillgrid::apps
