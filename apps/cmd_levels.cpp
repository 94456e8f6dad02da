// `skillgrid levels`: lists every registered level id with a one-line description.
#include <CLI/CLI.hpp>
#include <iomanip>
#include <iostream>

#include "apps/commands.h"
#include "envs/level.h"

namespace skillgrid::apps {

void AddLevelsCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd =
      app.add_subcommand("levels", "List every BabyAI level id with a one-line description");
  cmd->callback([exit_code] {
    size_t width = 0;
    for (const envs::LevelInfo& l : envs::AllLevels()) width = std::max(width, l.id.size());
    for (const envs::LevelInfo& l : envs::AllLevels()) {
      std::cout << std::left << std::setw(static_cast<int>(width) + 2) << l.id << l.description
                << "\n";
    }
    std::cout << envs::AllLevels().size() << " levels\n";
    *exit_code = 0;
  });
}

}  // namespace skillgrid::apps
