// Episode panels.
#include "viz/episode_panel.h"

#include <algorithm>

namespace skillgrid::viz {
namespace {
constexpr int kPad = 4;
}

int PanelHeaderHeight(const PanelStyle& style) {
  return kPad + (1 + std::max(0, style.mission_lines)) * kLineHeight * style.text_scale + 2;
}

int PanelFooterHeight(const PanelStyle& style) {
  return 3 + kLineHeight * style.text_scale + kPad;
}

int FitTilePx(int grid_w, int grid_h, int panel_w, int panel_h, const PanelStyle& style,
              int max_tile) {
  const int avail_w = panel_w - 2 * kPad;
  const int avail_h = panel_h - PanelHeaderHeight(style) - PanelFooterHeight(style);
  int t = std::min(avail_w / std::max(1, grid_w), avail_h / std::max(1, grid_h));
  return std::clamp(t, 1, max_tile);
}

PanelLayout LayoutPanel(const envs::WorldState& world, const PanelStyle& style, int x, int y) {
  PanelLayout L;
  const int gw = world.grid.width() * style.tile_px, gh = world.grid.height() * style.tile_px;
  const int w = style.width > 0 ? style.width : gw + 2 * kPad;
  const int h = style.height > 0 ? style.height
                                 : PanelHeaderHeight(style) + gh + PanelFooterHeight(style);
  L.panel = {x, y, w, h};
  const int avail_h = h - PanelHeaderHeight(style) - PanelFooterHeight(style);
  L.grid = {x + std::max(0, (w - gw) / 2), y + PanelHeaderHeight(style) + std::max(0, (avail_h - gh) / 2),
            gw, gh};
  return L;
}

PanelLayout DrawPanel(const envs::WorldState& world, const PanelText& text,
                      const PanelStyle& style, envs::RgbImage* image, int x, int y,
                      envs::RgbImage* scratch) {
  const PanelLayout L = LayoutPanel(world, style, x, y);
  const int s = style.text_scale;
  FillRect(image, L.panel, palette::kPanel);
  const int text_w = L.panel.w - 2 * kPad;
  int ty = y + kPad;
  DrawText(image, x + kPad, ty, FitText(text.title, text_w, s), palette::kText, s);
  ty += kLineHeight * s;
  const auto lines = WrapText(text.mission, text_w, s);
  for (int i = 0; i < style.mission_lines && i < static_cast<int>(lines.size()); ++i) {
    std::string line = lines[i];
    if (i == style.mission_lines - 1 && static_cast<int>(lines.size()) > style.mission_lines) {
      line = FitText(line + " ...", text_w, s);
    }
    DrawText(image, x + kPad, ty, line, {255, 220, 120}, s);
    ty += kLineHeight * s;
  }
  envs::RenderOptions ro;
  ro.tile_px = style.tile_px;
  ro.highlight_visible = style.highlight;
  envs::RenderGrid(world, ro, scratch);
  Blit(image, *scratch, L.grid.x, L.grid.y);
  DrawText(image, x + kPad, L.panel.y + L.panel.h - kPad - kGlyphHeight * s,
           FitText(text.status, text_w, s), palette::kDim, s);
  if (text.selected) StrokeRect(image, L.panel, palette::kAccent, 2);
  return L;
}

}  // namespace skillgrid::viz
