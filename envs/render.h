// RGB rendering of a world in Minigrid's visual language (minigrid/core/grid.py render_tile and
// the WorldObj render methods): each tile is drawn at 3x resolution with the same shape tests,
// colours and float/uint8 conversions as Minigrid, highlighted, then box-downsampled, aiming at
// Minigrid's pixels exactly. Tiles are cached per thread (thread-safe); rendering into a reused
// RgbImage does not allocate.
#pragma once

#include <cstdint>
#include <vector>

#include "envs/image_io.h"
#include "envs/world.h"

namespace skillgrid::envs {

/// How to render.
struct RenderOptions {
  int tile_px = 32;  ///< pixels per cell side (Minigrid's TILE_PIXELS); 1..256
  /// Brighten the cells the agent sees (Minigrid's `highlight=True`, its default).
  bool highlight_visible = true;
  bool draw_agent = true;  ///< draw the agent's red triangle
};

/// Renders the whole grid: image of (width * tile_px) x (height * tile_px) pixels.
/// `out` is resized (its buffer reused); throws std::invalid_argument on a bad tile_px.
void RenderGrid(const WorldState& world, const RenderOptions& options, RgbImage* out);

/// Same, into a caller buffer of GridImageWidth * GridImageHeight * 3 bytes (rows packed).
void RenderGrid(const WorldState& world, const RenderOptions& options, uint8_t* rgb);

/// Pixel size of RenderGrid's image.
inline int GridImageWidth(const WorldState& world, const RenderOptions& options) {
  return world.grid.width() * options.tile_px;
}
inline int GridImageHeight(const WorldState& world, const RenderOptions& options) {
  return world.grid.height() * options.tile_px;
}

/// Renders the agent's egocentric view as Minigrid's get_pov_render does: V x V tiles, the agent
/// at the bottom centre facing up, hidden cells drawn empty, seen cells highlighted (if enabled).
/// The agent's own cell shows what it carries. Image is (V * tile_px) pixels square.
void RenderAgentView(const WorldState& world, const RenderOptions& options, RgbImage* out);

/// Renders an encoded observation (Observe's layout: obs[(i * V + j) * 3 + c]) like
/// RenderAgentView; cells of type unseen (0) count as hidden. Throws std::invalid_argument on
/// codes outside Minigrid's tables.
void RenderObservation(const uint8_t* obs, int view_size, const RenderOptions& options,
                       RgbImage* out);

/// Renders one tile: `obj` (empty for none), the agent triangle if `agent_dir` is 0..3
/// (-1 for none), highlighted or not. `out` becomes tile_px x tile_px.
void RenderTile(const Object& obj, int agent_dir, bool highlight, int tile_px, RgbImage* out);

/// Marks the in-grid cells the agent sees (Observe's visibility mask mapped through
/// ViewToWorld): mask[y * width + x] = 1 if seen, else 0. Resizes `mask` to width * height.
void VisibleCells(const WorldState& world, std::vector<uint8_t>* mask);

/// Minigrid's RGB value of a colour (COLORS in minigrid/core/constants.py).
const uint8_t* ColorRgb(Color c);

}  // namespace skillgrid::envs
