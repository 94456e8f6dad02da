// The SFML window of `skillgrid view`: shows the ViewerController's dashboard, maps keys and
// mouse clicks to commands, and can capture the window to a PNG after a number of frames
// (for tests and README screenshots).
#pragma once

#include <memory>
#include <string>

#include "viz/controller.h"

namespace skillgrid::viz {

/// Window settings.
struct ViewerOptions {
  std::string title = "skillgrid view";  ///< window title
  int fps = 30;                          ///< frame-rate limit
  int frames = 0;                        ///< > 0: close after this many frames
  std::string screenshot;                ///< PNG written from the window after the last frame
  bool fixed_timestep = false;           ///< advance 1/fps per frame instead of wall time
};

/// True when a display can be opened (DISPLAY or WAYLAND_DISPLAY is set); otherwise *why
/// (if given) says so in one line.
bool DisplayAvailable(std::string* why);

/// Runs the window until it is closed (or `frames` have been shown). Returns 0, or 1 with a
/// one-line message on stderr when the window cannot be created or the screenshot not written.
int RunViewer(ViewerController& controller, const ViewerOptions& options);

}  // namespace skillgrid::viz
