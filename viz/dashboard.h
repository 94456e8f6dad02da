// The viewer's picture, composed into one RgbImage without SFML (the window only uploads it):
// episode panels (one per task) on the left, the routing heatmap of the selected layer and head
// on the right with the dendrogram of tasks below it, and a status bar with the keys.
#pragma once

#include <string>
#include <vector>

#include "envs/image_io.h"
#include "viz/cluster.h"
#include "viz/dendrogram.h"
#include "viz/episode_panel.h"
#include "viz/heatmap.h"
#include "viz/routing.h"
#include "viz/session.h"

namespace skillgrid::viz {

/// What the dashboard shows besides the episodes.
struct DashboardState {
  int width = 1280;             ///< image width in pixels
  int height = 800;             ///< image height in pixels
  int selected = 0;             ///< slot on screen (framed; its heatmap row is highlighted)
  int matrix = 0;               ///< index into the snapshot's matrices (layer and head)
  bool paused = false;          ///< episodes are paused
  bool manual = false;          ///< the selected slot is played by hand
  bool sample = false;          ///< sampled actions instead of argmax
  double steps_per_second = 4;  ///< episode speed
  std::string actor;            ///< who acts, e.g. "policy ckpt_100.pt", "expert bot"
  std::string routing_note;     ///< shown instead of the heatmap when there is no routing
  std::string message;          ///< last event, e.g. "reloaded skills.json (frames 81920)"
  std::vector<int> fired;       ///< skills marked under the heatmap (firing this episode)
  ClusterOptions cluster;       ///< dendrogram distance and linkage
};

/// Where the dashboard put everything, for tests and mouse handling.
struct DashboardLayout {
  std::vector<PanelLayout> panels;  ///< per slot
  Rect heatmap_area;                ///< right-hand region of the heatmap
  bool has_heatmap = false;         ///< a heatmap was drawn
  HeatmapLayout heatmap;            ///< its layout (valid if has_heatmap)
  bool has_dendrogram = false;      ///< a dendrogram was drawn
  DendrogramLayout dendrogram;      ///< its layout (valid if has_dendrogram)
  Rect status;                      ///< the status bar
};

/// Composes the dashboard into `out` (resized to state.width x state.height). `snapshot` may be
/// null (no routing: state.routing_note is shown). `scratch` is reused for grid renderings.
DashboardLayout DrawDashboard(const Session& session, const RoutingSnapshot* snapshot,
                              const DashboardState& state, envs::RgbImage* out,
                              envs::RgbImage* scratch);

/// The status text of a slot: "step 3/64  reward 0.00  success 2/5".
std::string SlotStatus(const TaskSlot& slot);

/// Key help shown in the status bar.
extern const char* const kViewerKeyHelp;

}  // namespace skillgrid::viz
