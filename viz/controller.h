// The viewer's logic without a window: a Session, the routing snapshot, the dashboard state,
// key commands, timing, and --follow reloading of skills.json and checkpoints. The SFML window
// (viewer.cpp) maps keys to Commands, calls Tick and Draw, and shows the image.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "viz/dashboard.h"
#include "viz/routing.h"
#include "viz/run_dir.h"
#include "viz/session.h"

namespace skillgrid::viz {

/// What a key does.
enum class Command {
  kPause,         ///< space: pause or resume
  kSingleStep,    ///< n: one step of every running slot (pauses)
  kFaster,        ///< +: double the speed
  kSlower,        ///< -: halve the speed
  kNextLayer,     ///< ]: next layer
  kPrevLayer,     ///< [: previous layer
  kNextHead,      ///< }: next head
  kPrevHead,      ///< {: previous head
  kNextTask,      ///< tab: next task on screen
  kPrevTask,      ///< shift+tab: previous task
  kToggleSample,  ///< s: argmax / sampled actions
  kToggleManual,  ///< m: manual play of the selected task
  kRestart,       ///< r: restart the selected task's episode
  kLeft,          ///< left arrow (manual): turn left
  kRight,         ///< right arrow (manual): turn right
  kForward,       ///< up arrow (manual): forward
  kPickup,        ///< p (manual): pick up
  kDrop,          ///< d (manual): drop
  kToggle,        ///< t (manual): toggle
  kDone,          ///< enter (manual): done
};

/// Settings of a ViewerController.
struct ControllerConfig {
  int width = 1280;                  ///< image width
  int height = 800;                  ///< image height
  double steps_per_second = 4.0;     ///< initial speed
  bool paused = false;               ///< start paused
  bool manual = false;               ///< start in manual play
  bool sample = false;               ///< start with sampled actions
  std::string skills_path;           ///< skills.json to show (and follow); "" for none
  std::vector<std::string> default_tasks;  ///< row names when skills.json lacks them
  std::string routing_note;          ///< shown when there is no routing
  std::string initial_message;       ///< status-bar message at start (e.g. why nobody acts)
  bool follow = false;               ///< poll skills.json and the run's checkpoints for changes
  double follow_interval_s = 1.0;    ///< seconds between polls
  std::string run_dir;               ///< run directory to poll for checkpoints ("" for none)
  std::string checkpoint;            ///< checkpoint the actor came from ("" for none)
  /// Builds an actor from a checkpoint for --follow (null: keep the current actor); gets the
  /// path and returns null with *why set on failure.
  std::function<std::unique_ptr<Actor>(const std::string&, std::string*)> load_checkpoint;
};

/// Viewer state machine: commands, timing and reloading; draws the dashboard.
class ViewerController {
 public:
  /// Takes the session; loads skills.json if configured (a bad file becomes a message).
  ViewerController(std::unique_ptr<Session> session, ControllerConfig config);

  /// Applies a command.
  void Handle(Command command);
  /// Advances time by `dt` seconds: steps episodes at the current speed unless paused and polls
  /// files when following.
  void Tick(double dt);
  /// Composes the picture into `out`; returns its layout.
  DashboardLayout Draw(envs::RgbImage* out);
  /// Reloads skills.json now (and the newest checkpoint when following); returns true if
  /// something changed.
  bool Poll();
  /// Selects the slot shown (clicked panel); ignored when out of range.
  void Select(int slot);

  /// The session.
  const Session& session() const { return *session_; }
  /// The dashboard state (selection, layer, speed, ...).
  const DashboardState& state() const { return state_; }
  /// The routing snapshot shown, or null.
  const RoutingSnapshot* snapshot() const { return snapshot_ ? &*snapshot_ : nullptr; }

 private:
  void StepAll();
  void MoveMatrix(int layer_delta, int head_delta);
  void UpdateFired();
  void SetMessage(const std::string& m) { state_.message = m; }
  bool ReloadSkills();
  bool ReloadCheckpoint();

  std::unique_ptr<Session> session_;
  ControllerConfig config_;
  DashboardState state_;
  std::optional<RoutingSnapshot> snapshot_;
  std::filesystem::file_time_type skills_mtime_{};
  uintmax_t skills_size_ = 0;
  std::string checkpoint_;
  double step_accum_ = 0.0;
  double poll_accum_ = 0.0;
  envs::RgbImage scratch_;
};

}  // namespace skillgrid::viz
