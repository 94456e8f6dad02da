// Dendrogram drawing.
#include "viz/dendrogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "viz/routing.h"

namespace skillgrid::viz {
namespace {

std::string FormatTick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

}  // namespace

DendrogramLayout LayoutDendrogram(const Clustering& c, const std::vector<std::string>& names,
                                  const DendrogramStyle& style, int x, int y) {
  DendrogramLayout L;
  const int s = style.text_scale;
  const int n = c.num_leaves;
  int label_w = 0;
  for (const auto& name : names) label_w = std::max(label_w, TextWidth(ShortTaskName(name), s));
  const int title_h = style.title.empty() ? 0 : kLineHeight * s + 4;
  const int tree_w = std::max(20, style.tree_width);
  L.tree = {x + label_w + 6, y + title_h, tree_w, n * style.row_px};
  L.max_distance = 0.0;
  for (const auto& m : c.merges) L.max_distance = std::max(L.max_distance, m.distance);
  if (!(L.max_distance > 0.0)) L.max_distance = 1.0;
  L.leaf_y.assign(n, 0);
  L.node_x.assign(n + c.merges.size(), L.tree.x);
  L.node_y.assign(n + c.merges.size(), 0);
  for (size_t r = 0; r < c.leaf_order.size(); ++r) {
    const int leaf = c.leaf_order[r];
    L.leaf_y[leaf] = L.tree.y + static_cast<int>(r) * style.row_px + style.row_px / 2;
    L.node_y[leaf] = L.leaf_y[leaf];
  }
  for (size_t i = 0; i < c.merges.size(); ++i) {
    const Merge& m = c.merges[i];
    const int id = n + static_cast<int>(i);
    L.node_x[id] = L.tree.x + static_cast<int>(std::lround(m.distance / L.max_distance * (tree_w - 1)));
    L.node_y[id] = (L.node_y[m.a] + L.node_y[m.b]) / 2;
  }
  const int axis_h = 4 + kLineHeight * s + 2;
  L.width = L.tree.x + tree_w + TextWidth("0.00", s) / 2 + 2 - x;
  L.height = title_h + L.tree.h + axis_h;
  return L;
}

DendrogramLayout DrawDendrogram(const Clustering& c, const std::vector<std::string>& names,
                                const DendrogramStyle& style, envs::RgbImage* image, int x,
                                int y) {
  const DendrogramLayout L = LayoutDendrogram(c, names, style, x, y);
  const int s = style.text_scale;
  const int n = c.num_leaves;
  if (!style.title.empty()) DrawText(image, x, y, style.title, palette::kText, s);
  // Which clusters contain the highlighted leaf (their branches are drawn in the accent colour).
  std::vector<bool> hot(n + c.merges.size(), false);
  if (style.highlight_leaf >= 0 && style.highlight_leaf < n) {
    hot[style.highlight_leaf] = true;
    for (size_t i = 0; i < c.merges.size(); ++i) {
      hot[n + i] = hot[c.merges[i].a] || hot[c.merges[i].b];
    }
  }
  for (int leaf = 0; leaf < n; ++leaf) {
    const std::string label = leaf < static_cast<int>(names.size()) ? ShortTaskName(names[leaf])
                                                                     : std::to_string(leaf);
    DrawText(image, L.tree.x - 6 - TextWidth(label, s), L.leaf_y[leaf] - kGlyphHeight * s / 2,
             label, hot[leaf] ? palette::kAccent : palette::kText, s);
  }
  for (size_t i = 0; i < c.merges.size(); ++i) {
    const Merge& m = c.merges[i];
    const int id = n + static_cast<int>(i);
    const int xm = L.node_x[id];
    for (int child : {m.a, m.b}) {
      const Rgb col = hot[child] ? palette::kAccent : style.line;
      HLine(image, L.node_x[child], xm, L.node_y[child], col);
    }
    VLine(image, xm, L.node_y[m.a], L.node_y[m.b], hot[id] ? palette::kAccent : style.line);
  }
  if (n == 1) HLine(image, L.tree.x, L.tree.x + 8, L.leaf_y[0], style.line);
  // Distance axis.
  const int ay = L.tree.y + L.tree.h + 2;
  HLine(image, L.tree.x, L.tree.x + L.tree.w - 1, ay, palette::kDim);
  for (int k = 0; k <= 2; ++k) {
    const int tx = L.tree.x + k * (L.tree.w - 1) / 2;
    VLine(image, tx, ay, ay + 2, palette::kDim);
    const std::string label = FormatTick(L.max_distance * k / 2.0);
    DrawText(image, tx - TextWidth(label, s) / 2, ay + 4, label, palette::kDim, s);
  }
  return L;
}

envs::RgbImage RenderDendrogram(const Clustering& c, const std::vector<std::string>& names,
                                const DendrogramStyle& style, DendrogramLayout* layout,
                                int margin) {
  const DendrogramLayout L0 = LayoutDendrogram(c, names, style, margin, margin);
  envs::RgbImage image;
  Clear(&image, L0.width + 2 * margin + TextWidth("0.00", style.text_scale) / 2,
        L0.height + 2 * margin, palette::kBackground);
  const DendrogramLayout L = DrawDendrogram(c, names, style, &image, margin, margin);
  if (layout) *layout = L;
  return image;
}

}  // namespace skillgrid::viz
