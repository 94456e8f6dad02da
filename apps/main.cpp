// skillgrid command-line tool: one subcommand per job; see `skillgrid --help`.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "apps/commands.h"
#ifdef SKILLGRID_HAVE_TORCH
#include "skills/blas_runtime.h"
#endif

int main(int argc, char** argv) {
#ifdef SKILLGRID_HAVE_TORCH
  // Before anything else: OpenBLAS may need a restart to use this CPU's vector units.
  skillgrid::skills::ReexecWithTunedBlas(argv);
  skillgrid::skills::KeepFreedMemoryInHeap();
#endif
  CLI::App app{
      "skillgrid: multitask reinforcement learning with routed skill modules on BabyAI grid "
      "worlds"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "skillgrid 0.1.0");
  int exit_code = 0;
  skillgrid::apps::AddTrainCommand(app, &exit_code);
  skillgrid::apps::AddEvalCommand(app, &exit_code);
  skillgrid::apps::AddReplayCommand(app, &exit_code);
  skillgrid::apps::AddRenderStateCommand(app, &exit_code);
  skillgrid::apps::AddLevelsCommand(app, &exit_code);
  skillgrid::apps::AddBenchCommand(app, &exit_code);
  skillgrid::apps::AddBotCommand(app, &exit_code);
  skillgrid::apps::AddViewCommand(app, &exit_code);
  skillgrid::apps::AddRenderCommand(app, &exit_code);
  skillgrid::apps::AddPlotCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "skillgrid: error: " << e.what() << "\n";
    return 1;
  }
  return exit_code;
}
