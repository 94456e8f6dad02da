// One task's episode drawn as a panel: the level name, the mission text, the grid drawn by the
// engine's renderer (envs::RenderGrid), and a status line (step, reward, success counter).
#pragma once

#include <string>

#include "envs/image_io.h"
#include "envs/render.h"
#include "envs/world.h"
#include "viz/canvas.h"

namespace skillgrid::viz {

/// What a panel shows besides the world.
struct PanelText {
  std::string title;    ///< first line, e.g. the short level name
  std::string mission;  ///< mission text, wrapped over at most `mission_lines` lines
  std::string status;   ///< last line, e.g. "step 3/64  reward 0.00  success 2/5"
  bool selected = false;  ///< frame the panel in the accent colour
};

/// How to draw a panel.
struct PanelStyle {
  int tile_px = 16;        ///< pixels per cell of the grid
  bool highlight = true;   ///< brighten the cells the agent sees (Minigrid's default)
  int text_scale = 1;      ///< bitmap-font scale
  int mission_lines = 2;   ///< lines reserved for the mission
  int width = 0;           ///< fixed panel width; 0 = fit the grid
  int height = 0;          ///< fixed panel height; 0 = fit the grid
};

/// Where a panel's parts land.
struct PanelLayout {
  Rect panel;  ///< the whole panel
  Rect grid;   ///< the rendered grid (exactly RenderGrid's image)
};

/// Pixels above the grid (title and mission lines) and below it (status line) for `style`.
int PanelHeaderHeight(const PanelStyle& style);
int PanelFooterHeight(const PanelStyle& style);

/// The largest tile size (>= 1, <= max_tile) at which a width x height grid fits a panel of
/// panel_w x panel_h pixels.
int FitTilePx(int grid_w, int grid_h, int panel_w, int panel_h, const PanelStyle& style,
              int max_tile = 32);

/// Layout of a panel for `world` at (x, y).
PanelLayout LayoutPanel(const envs::WorldState& world, const PanelStyle& style, int x, int y);

/// Draws the panel into `image` at (x, y) (clipped); `scratch` receives the grid rendering.
PanelLayout DrawPanel(const envs::WorldState& world, const PanelText& text,
                      const PanelStyle& style, envs::RgbImage* image, int x, int y,
                      envs::RgbImage* scratch);

}  // namespace skillgrid::viz
