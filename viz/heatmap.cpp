// Heatmap drawing: layout, cells, labels, markers and the colour legend.
#include "viz/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace skillgrid::viz {
namespace {

// matplotlib's viridis at t = 0, 1/8, ..., 1.
constexpr Rgb kViridis[9] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                             {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                             {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};

std::string FormatTick(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", static_cast<double>(v));
  return buf;
}

// Geometry shared by layout and drawing.
struct Metrics {
  int title_h = 0, header_h = 0, label_w = 0, marker_h = 0;
};

Metrics Measure(const RoutingMatrix& m, const HeatmapStyle& style) {
  Metrics k;
  const int s = style.text_scale;
  k.title_h = style.title.empty() ? 0 : kLineHeight * s + 2;
  k.header_h = kLineHeight * s;
  int w = 0;
  for (const auto& t : m.task_names) w = std::max(w, TextWidth(ShortTaskName(t), s));
  k.label_w = w + 4 * s + 6;  // room for the highlight's '>' marker
  k.marker_h = 8;
  return k;
}

}  // namespace

Rgb ScaleColor(float t) {
  if (!(t > 0.0f)) t = 0.0f;  // also maps NaN to the bottom
  if (t > 1.0f) t = 1.0f;
  const float f = t * 8.0f;
  const int i = std::min(7, static_cast<int>(f));
  const float u = f - static_cast<float>(i);
  const Rgb a = kViridis[i], b = kViridis[i + 1];
  auto mix = [u](uint8_t p, uint8_t q) {
    return static_cast<uint8_t>(std::lround(p + (static_cast<float>(q) - p) * u));
  };
  return {mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
}

Rgb ValueColor(float value, float vmin, float vmax) {
  return ScaleColor((value - vmin) / (vmax - vmin));
}

int HeatmapLayout::RowOf(int task) const {
  for (size_t r = 0; r < order.size(); ++r) {
    if (order[r] == task) return static_cast<int>(r);
  }
  return -1;
}

HeatmapLayout LayoutHeatmap(const RoutingMatrix& m, const HeatmapStyle& style, int x, int y) {
  const Metrics k = Measure(m, style);
  HeatmapLayout L;
  L.cell_px = std::max(3, style.cell_px);
  L.gap_px = std::max(0, style.gap_px);
  L.cols = m.num_skills;
  if (style.row_order.empty()) {
    for (int t = 0; t < m.num_tasks(); ++t) L.order.push_back(t);
  } else {
    for (int t : style.row_order) {
      if (t >= 0 && t < m.num_tasks()) L.order.push_back(t);
    }
  }
  L.rows = static_cast<int>(L.order.size());
  L.vmin = style.vmin;
  L.vmax = style.vmax;
  if (!(L.vmax > L.vmin)) {
    float mx = 0.0f;
    for (float v : m.weights) mx = std::max(mx, v);
    L.vmax = mx > L.vmin ? mx : L.vmin + 1.0f;
  }
  const int grid_w = std::max(0, L.cols * (L.cell_px + L.gap_px) - L.gap_px);
  const int grid_h = std::max(0, L.rows * (L.cell_px + L.gap_px) - L.gap_px);
  L.grid = {x + k.label_w, y + k.title_h + k.header_h, grid_w, grid_h};
  int right = L.grid.x + grid_w;
  int bottom = L.grid.y + grid_h + k.marker_h;
  if (style.legend) {
    const int bar_h = style.legend_height > 0 ? style.legend_height : std::max(60, grid_h);
    L.legend_bar = {right + 12, L.grid.y, 12, bar_h};
    right = L.legend_bar.x + L.legend_bar.w + 4 + TextWidth("0.00", style.text_scale);
    bottom = std::max(bottom, L.legend_bar.y + bar_h + kGlyphHeight * style.text_scale / 2 + 1);
  }
  int title_w = TextWidth(style.title, style.text_scale);
  L.width = std::max(right, x + title_w) - x;
  L.height = bottom - y;
  return L;
}

HeatmapLayout DrawHeatmap(const RoutingMatrix& m, const HeatmapStyle& style,
                          envs::RgbImage* image, int x, int y) {
  const HeatmapLayout L = LayoutHeatmap(m, style, x, y);
  const Metrics k = Measure(m, style);
  const int s = style.text_scale;
  if (!style.title.empty()) DrawText(image, x, y, style.title, palette::kText, s);
  // Column headers: skill numbers from 1.
  for (int c = 0; c < L.cols; ++c) {
    const Rect cell = L.Cell(0, c);
    const std::string label = std::to_string(c + 1);
    const int tw = TextWidth(label, s);
    if (tw <= cell.w + L.gap_px + 2 || c % 2 == 0) {
      DrawText(image, cell.x + (cell.w - tw) / 2, L.grid.y - k.header_h, label, palette::kDim, s);
    }
  }
  // Cells and row labels.
  for (int r = 0; r < L.rows; ++r) {
    const int t = L.order[r];
    for (int c = 0; c < L.cols; ++c) FillRect(image, L.Cell(r, c), ValueColor(m.at(t, c), L.vmin, L.vmax));
    const bool hi = t == style.highlight_row;
    const std::string label = ShortTaskName(m.task_names[t]);
    const int ly = L.Cell(r, 0).y + (L.cell_px - kGlyphHeight * s) / 2;
    DrawText(image, L.grid.x - 4 - TextWidth(label, s), ly, label,
             hi ? palette::kAccent : palette::kText, s);
    if (hi) DrawText(image, x, ly, ">", palette::kAccent, s);
  }
  // Highlighted row: a frame drawn just outside its cells.
  const int hr = L.RowOf(style.highlight_row);
  if (hr >= 0 && L.cols > 0) {
    const Rect first = L.Cell(hr, 0);
    StrokeRect(image, {first.x - 2, first.y - 2, L.grid.w + 4, L.cell_px + 4}, palette::kAccent, 2);
  }
  // Marked columns: an upward triangle under the column.
  for (int c : style.marked_columns) {
    if (c < 0 || c >= L.cols) continue;
    const Rect cell = L.Cell(0, c);
    const int cx = cell.x + cell.w / 2, top = L.grid.y + L.grid.h + 2;
    for (int i = 0; i < 5; ++i) HLine(image, cx - i, cx + i, top + i, palette::kAccent);
  }
  // Legend: vmax at the top, vmin at the bottom.
  if (style.legend && L.legend_bar.w > 0) {
    const Rect bar = L.legend_bar;
    for (int i = 0; i < bar.h; ++i) {
      const float t = bar.h > 1 ? 1.0f - static_cast<float>(i) / static_cast<float>(bar.h - 1) : 1.0f;
      HLine(image, bar.x, bar.x + bar.w - 1, bar.y + i, ScaleColor(t));
    }
    const float mid = 0.5f * (L.vmin + L.vmax);
    const int tx = bar.x + bar.w + 4, half = kGlyphHeight * s / 2;
    DrawText(image, tx, bar.y, FormatTick(L.vmax), palette::kDim, s);
    DrawText(image, tx, bar.y + bar.h / 2 - half, FormatTick(mid), palette::kDim, s);
    DrawText(image, tx, bar.y + bar.h - 2 * half, FormatTick(L.vmin), palette::kDim, s);
  }
  return L;
}

envs::RgbImage RenderHeatmap(const RoutingMatrix& m, const HeatmapStyle& style,
                             HeatmapLayout* layout, int margin) {
  const HeatmapLayout L0 = LayoutHeatmap(m, style, margin, margin);
  envs::RgbImage image;
  Clear(&image, L0.width + 2 * margin, L0.height + 2 * margin, palette::kBackground);
  const HeatmapLayout L = DrawHeatmap(m, style, &image, margin, margin);
  if (layout) *layout = L;
  return image;
}

}  // namespace skillgrid::viz
