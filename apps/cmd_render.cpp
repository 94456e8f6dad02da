// `skillgrid render-state`: draws a state JSON file (a trace's `initial`, or a whole trace line)
// to a PNG image.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "envs/image_io.h"
#include "envs/render.h"
#include "envs/state_io.h"

namespace skillgrid::apps {
namespace {

struct RenderStateOptions {
  std::string state;        // JSON file: a state object, or a trace line with an `initial`
  std::string out;          // PNG to write
  int tile_px = 32;         // pixels per cell
  bool highlight = false;   // brighten the cells the agent sees
  bool agent_view = false;  // draw the agent's egocentric view instead of the full grid
};

int RunRenderState(const RenderStateOptions& opt) {
  std::ifstream in(opt.state);
  if (!in) {
    std::cerr << "skillgrid render-state: error: cannot open '" << opt.state << "'\n";
    return 2;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::cerr << "skillgrid render-state: error: " << opt.state << " is not valid JSON: "
              << e.what() << "\n";
    return 2;
  }
  if (j.is_object() && j.contains("initial")) j = j["initial"];
  envs::WorldState world;
  try {
    world = envs::WorldFromJson(j);
  } catch (const envs::InputError& e) {
    std::cerr << "skillgrid render-state: error: " << opt.state << ": " << e.what() << "\n";
    return 2;
  }
  envs::RenderOptions ro;
  ro.tile_px = opt.tile_px;
  ro.highlight_visible = opt.highlight;
  envs::RgbImage image;
  if (opt.agent_view) {
    envs::RenderAgentView(world, ro, &image);
  } else {
    envs::RenderGrid(world, ro, &image);
  }
  envs::WritePng(opt.out, image);
  std::cout << "wrote " << opt.out << " (" << image.width << "x" << image.height << ")\n";
  return 0;
}

}  // namespace

void AddRenderStateCommand(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<RenderStateOptions>();
  CLI::App* cmd = app.add_subcommand("render-state", "Draw a world state (JSON) to a PNG image");
  cmd->add_option("--state", opt->state,
                  "state JSON: a trace's `initial` object or a whole trace line")
      ->required();
  cmd->add_option("--out", opt->out, "PNG file to write")->required();
  cmd->add_option("--tile", opt->tile_px, "pixels per cell")
      ->capture_default_str()
      ->check(CLI::Range(4, 256));
  cmd->add_flag("--highlight", opt->highlight, "brighten the cells the agent sees");
  cmd->add_flag("--agent-view", opt->agent_view, "draw the agent's 7x7 view instead of the grid");
  cmd->callback([opt, exit_code] { *exit_code = RunRenderState(*opt); });
}

}  // namespace skillgrid::apps
