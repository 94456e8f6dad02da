// `skillgrid train`: the main job. Multitask training lands with the trainer (issue 5); until
// then the command says so plainly and exits non-zero instead of pretending to train.
#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/commands.h"

namespace skillgrid::apps {

void AddTrainCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a multitask agent with routed skills (the main job; not built yet)");
  cmd->callback([exit_code] {
    std::cerr << "skillgrid train: the trainer is not part of this build yet; "
                 "try 'skillgrid replay' or 'skillgrid bench env'\n";
    *exit_code = 2;
  });
}

}  // namespace skillgrid::apps
