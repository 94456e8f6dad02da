// Heatmap of a task x skill routing matrix: tasks as rows (level names), skills as columns
// (numbered from 1 as in Polytropon's tables), a viridis colour scale with a legend, an optional
// highlighted row (the task on screen) and marked columns (the skills firing this episode).
#pragma once

#include <string>
#include <vector>

#include "envs/image_io.h"
#include "viz/canvas.h"
#include "viz/routing.h"

namespace skillgrid::viz {

/// The colour scale: viridis sampled at 9 stops and interpolated linearly; t is clamped to [0, 1].
Rgb ScaleColor(float t);

/// Colour of `value` on a scale from vmin to vmax (vmax > vmin).
Rgb ValueColor(float value, float vmin, float vmax);

/// How to draw a heatmap.
struct HeatmapStyle {
  int cell_px = 20;     ///< side of a cell in pixels (>= 3)
  int gap_px = 1;       ///< background pixels between cells
  int text_scale = 1;   ///< bitmap-font scale of labels
  float vmin = 0.0f;    ///< value at the bottom of the scale
  float vmax = 1.0f;    ///< value at the top; vmax <= vmin picks the matrix's max (or 1)
  std::string title;    ///< line above the heatmap; empty for none
  int highlight_row = -1;          ///< task row framed in the accent colour; -1 for none
  std::vector<int> marked_columns;  ///< skill columns marked below the grid (firing skills)
  std::vector<int> row_order;       ///< rows to draw, top to bottom; empty = matrix order
  bool legend = true;               ///< draw the colour bar with its tick labels
  int legend_height = 0;            ///< colour bar height; 0 = the grid's height (min 60)
};

/// Where everything of a heatmap lands, relative to the image it is drawn into.
struct HeatmapLayout {
  int width = 0;           ///< total width in pixels
  int height = 0;          ///< total height in pixels
  Rect grid;               ///< the cell grid (cells and the gaps between them)
  Rect legend_bar;         ///< the colour bar; w == 0 when there is no legend
  int cell_px = 0;         ///< cell side
  int gap_px = 0;          ///< gap between cells
  int rows = 0;            ///< rows drawn
  int cols = 0;            ///< columns (skills)
  float vmin = 0.0f;       ///< effective bottom of the scale
  float vmax = 1.0f;       ///< effective top of the scale
  std::vector<int> order;  ///< matrix row shown at each drawn row

  /// The cell of drawn row r, column c.
  Rect Cell(int r, int c) const {
    return {grid.x + c * (cell_px + gap_px), grid.y + r * (cell_px + gap_px), cell_px, cell_px};
  }
  /// Drawn row of matrix row `task`, or -1.
  int RowOf(int task) const;
};

/// Computes the layout of `m` drawn with `style` at offset (x, y).
HeatmapLayout LayoutHeatmap(const RoutingMatrix& m, const HeatmapStyle& style, int x = 0,
                            int y = 0);

/// Draws the heatmap into `image` at offset (x, y) (the image must already be large enough;
/// drawing clips) and returns its layout.
HeatmapLayout DrawHeatmap(const RoutingMatrix& m, const HeatmapStyle& style,
                          envs::RgbImage* image, int x, int y);

/// Renders the heatmap alone on the background colour, with a margin of `margin` pixels.
envs::RgbImage RenderHeatmap(const RoutingMatrix& m, const HeatmapStyle& style,
                             HeatmapLayout* layout = nullptr, int margin = 8);

}  // namespace skillgrid::viz
