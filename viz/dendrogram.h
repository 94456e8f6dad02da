// The task hierarchy drawn as a dendrogram: leaves (tasks) top to bottom in dendrogram order
// with their level names on the left, merges to the right at x proportional to their distance,
// and a distance axis below.
#pragma once

#include <string>
#include <vector>

#include "envs/image_io.h"
#include "viz/canvas.h"
#include "viz/cluster.h"

namespace skillgrid::viz {

/// How to draw a dendrogram.
struct DendrogramStyle {
  int row_px = 20;          ///< vertical pixels per leaf
  int tree_width = 200;     ///< pixels from the leaves (distance 0) to the largest distance
  int text_scale = 1;       ///< bitmap-font scale of labels
  std::string title;        ///< line above; empty for none
  int highlight_leaf = -1;  ///< task whose label and branch are drawn in the accent colour
  Rgb line = {200, 200, 210};  ///< branch colour
};

/// Where a dendrogram's parts land, relative to the image it is drawn into.
struct DendrogramLayout {
  int width = 0;                ///< total width
  int height = 0;               ///< total height
  Rect tree;                    ///< area of the branches: x = distance 0, x + w = max distance
  double max_distance = 0.0;    ///< distance at tree.x + tree.w
  std::vector<int> leaf_y;      ///< centre row of each leaf (indexed by leaf id)
  std::vector<int> node_x;      ///< x of every cluster (leaves, then merges)
  std::vector<int> node_y;      ///< y of every cluster (leaves, then merges)
};

/// Computes the layout of `c` with labels `names` (one per leaf) at offset (x, y).
DendrogramLayout LayoutDendrogram(const Clustering& c, const std::vector<std::string>& names,
                                  const DendrogramStyle& style, int x = 0, int y = 0);

/// Draws into `image` at (x, y) (clipped) and returns the layout.
DendrogramLayout DrawDendrogram(const Clustering& c, const std::vector<std::string>& names,
                                const DendrogramStyle& style, envs::RgbImage* image, int x,
                                int y);

/// Renders the dendrogram alone on the background colour with a margin.
envs::RgbImage RenderDendrogram(const Clustering& c, const std::vector<std::string>& names,
                                const DendrogramStyle& style, DendrogramLayout* layout = nullptr,
                                int margin = 8);

}  // namespace skillgrid::viz
