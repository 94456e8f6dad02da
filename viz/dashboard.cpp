// Dashboard composition.
#include "viz/dashboard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace skillgrid::viz {

const char* const kViewerKeyHelp =
    "space pause  n step  +/- speed  [ ] layer  { } head  tab task  s argmax/sample  "
    "m manual (arrows p d t)  r restart  q quit";

std::string SlotStatus(const TaskSlot& slot) {
  char buf[160];
  const auto& w = slot.episode.world();
  std::snprintf(buf, sizeof(buf), "step %d/%d  reward %.2f  success %d/%d%s", w.step_count,
                w.max_steps, static_cast<double>(slot.episode_return), slot.successes,
                slot.episodes, slot.done ? (slot.last_success ? "  done: success" : "  done: fail") : "");
  return buf;
}

DashboardLayout DrawDashboard(const Session& session, const RoutingSnapshot* snapshot,
                              const DashboardState& state, envs::RgbImage* out,
                              envs::RgbImage* scratch) {
  DashboardLayout L;
  const int W = state.width, H = state.height;
  Clear(out, W, H, palette::kBackground);
  const int status_h = 2 * kLineHeight + 8;
  L.status = {0, H - status_h, W, status_h};
  const int n = session.num_slots();
  const bool routing = snapshot && !snapshot->matrices.empty();
  // Left: episode panels in a near-square mosaic.
  const int left_w = routing || !state.routing_note.empty() ? W * 11 / 20 : W;
  const int area_h = H - status_h;
  const int cols = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))));
  const int rows = std::max(1, (n + cols - 1) / cols);
  const int pw = (left_w - 8) / cols - 4, ph = (area_h - 8) / rows - 4;
  for (int i = 0; i < n; ++i) {
    const TaskSlot& s = session.slot(i);
    PanelStyle ps;
    ps.width = pw;
    ps.height = ph;
    ps.mission_lines = ph > 200 ? 2 : 1;
    const auto& world = s.episode.world();
    ps.tile_px = FitTilePx(world.grid.width(), world.grid.height(), pw, ph, ps, 48);
    PanelText text;
    text.title = ShortTaskName(s.level) + (i == state.selected && state.manual ? "  [manual]" : "");
    text.mission = world.mission;
    text.status = SlotStatus(s);
    text.selected = n > 1 && i == state.selected;
    const int x = 8 + (i % cols) * (pw + 4), y = 8 + (i / cols) * (ph + 4);
    L.panels.push_back(DrawPanel(world, text, ps, out, x, y, scratch));
  }
  // Right: heatmap over dendrogram, or the note saying why there is no routing.
  const int rx = left_w + 8, rw = W - rx - 8;
  L.heatmap_area = {rx, 8, rw, area_h - 16};
  if (routing) {
    const int mi = std::clamp(state.matrix, 0, static_cast<int>(snapshot->matrices.size()) - 1);
    const RoutingMatrix& m = snapshot->matrices[mi];
    const auto layers = snapshot->LayerNames();
    const int li = static_cast<int>(std::find(layers.begin(), layers.end(), m.layer) - layers.begin());
    char title[256];
    std::snprintf(title, sizeof(title), "layer %d/%d %s  head %d/%d%s", li + 1,
                  static_cast<int>(layers.size()), m.layer.c_str(), m.head + 1, m.num_heads,
                  snapshot->frames >= 0
                      ? ("  frames " + std::to_string(snapshot->frames)).c_str()
                      : "");
    HeatmapStyle hs;
    hs.title = title;
    const int task = state.selected < n ? session.slot(state.selected).task : -1;
    hs.highlight_row = task < m.num_tasks() ? task : -1;
    hs.marked_columns = state.fired;
    hs.vmax = 0.0f;  // scale 0 .. the matrix's largest weight (normalised weights stay readable)
    // Cell size: fit S columns and T rows into the width and about half the height.
    HeatmapStyle probe = hs;
    probe.cell_px = 10;
    const HeatmapLayout p = LayoutHeatmap(m, probe, 0, 0);
    const int fixed_w = p.width - p.grid.w, fixed_h = p.height - p.grid.h;
    const int half_h = (area_h - 16) * 11 / 20;
    int cell = std::min((rw - fixed_w) / std::max(1, m.num_skills) - 1,
                        (half_h - fixed_h) / std::max(1, m.num_tasks()) - 1);
    hs.cell_px = std::clamp(cell, 4, 32);
    hs.legend_height = 0;
    L.heatmap = DrawHeatmap(m, hs, out, rx, 8);
    L.has_heatmap = true;
    // Dendrogram of the tasks by this matrix's rows.
    const int dy = 8 + L.heatmap.height + 12;
    const int dh = area_h - dy - 4;
    if (m.num_tasks() >= 2 && dh > 40) {
      const Clustering c = ClusterTasks(m, state.cluster);
      DendrogramStyle ds;
      ds.title = "tasks clustered by skill allocation";
      ds.highlight_leaf = hs.highlight_row;
      ds.row_px = std::clamp((dh - 2 * kLineHeight - 12) / m.num_tasks(), 6, 24);
      DendrogramStyle probe_d = ds;
      probe_d.tree_width = 20;
      const DendrogramLayout pd = LayoutDendrogram(c, m.task_names, probe_d, 0, 0);
      ds.tree_width = std::max(40, rw - (pd.width - 20) - 16);
      L.dendrogram = DrawDendrogram(c, m.task_names, ds, out, rx, dy);
      L.has_dendrogram = true;
    }
  } else if (!state.routing_note.empty()) {
    int y = 8;
    for (const auto& line : WrapText(state.routing_note, rw)) {
      DrawText(out, rx, y, line, palette::kText);
      y += kLineHeight;
    }
  }
  // Status bar: state line and key help.
  FillRect(out, L.status, palette::kPanel);
  char line[512];
  std::snprintf(line, sizeof(line), "%s  %.1f steps/s  %s  actor: %s%s%s",
                state.paused ? "PAUSED" : "running", state.steps_per_second,
                state.sample ? "sampled" : "argmax", state.actor.empty() ? "none" : state.actor.c_str(),
                state.message.empty() ? "" : "  |  ", state.message.c_str());
  DrawText(out, 6, L.status.y + 4, FitText(line, W - 12), palette::kText);
  DrawText(out, 6, L.status.y + 4 + kLineHeight, FitText(kViewerKeyHelp, W - 12), palette::kDim);
  return L;
}

}  // namespace skillgrid::viz
