// Viewer logic.
#include "viz/controller.h"

#include <algorithm>
#include <cstdio>

namespace skillgrid::viz {

namespace fs = std::filesystem;

ViewerController::ViewerController(std::unique_ptr<Session> session, ControllerConfig config)
    : session_(std::move(session)), config_(std::move(config)) {
  state_.width = config_.width;
  state_.height = config_.height;
  state_.paused = config_.paused;
  state_.manual = config_.manual;
  state_.sample = config_.sample;
  state_.steps_per_second = config_.steps_per_second;
  state_.routing_note = config_.routing_note;
  checkpoint_ = config_.checkpoint;
  state_.message = config_.initial_message;
  if (session_->actor()) state_.actor = session_->actor()->name();
  if (!config_.skills_path.empty()) ReloadSkills();
  UpdateFired();
}

void ViewerController::Select(int slot) {
  if (slot < 0 || slot >= session_->num_slots()) return;
  state_.selected = slot;
  UpdateFired();
}

void ViewerController::Handle(Command command) {
  const int n = session_->num_slots();
  auto manual = [&](envs::Action a) {
    if (!state_.manual || n == 0) return;
    session_->StepManual(state_.selected, a);
    UpdateFired();
  };
  switch (command) {
    case Command::kPause:
      state_.paused = !state_.paused;
      break;
    case Command::kSingleStep:
      state_.paused = true;
      StepAll();
      break;
    case Command::kFaster:
      state_.steps_per_second = std::min(256.0, state_.steps_per_second * 2.0);
      break;
    case Command::kSlower:
      state_.steps_per_second = std::max(0.25, state_.steps_per_second / 2.0);
      break;
    case Command::kNextLayer:
      MoveMatrix(+1, 0);
      break;
    case Command::kPrevLayer:
      MoveMatrix(-1, 0);
      break;
    case Command::kNextHead:
      MoveMatrix(0, +1);
      break;
    case Command::kPrevHead:
      MoveMatrix(0, -1);
      break;
    case Command::kNextTask:
      if (n > 0) Select((state_.selected + 1) % n);
      break;
    case Command::kPrevTask:
      if (n > 0) Select((state_.selected + n - 1) % n);
      break;
    case Command::kToggleSample:
      state_.sample = !state_.sample;
      break;
    case Command::kToggleManual:
      state_.manual = !state_.manual;
      SetMessage(state_.manual ? "manual play: arrows move, p pickup, d drop, t toggle"
                               : "manual play off");
      break;
    case Command::kRestart:
      if (n > 0) session_->Restart(state_.selected);
      break;
    case Command::kLeft:
      manual(envs::Action::kLeft);
      break;
    case Command::kRight:
      manual(envs::Action::kRight);
      break;
    case Command::kForward:
      manual(envs::Action::kForward);
      break;
    case Command::kPickup:
      manual(envs::Action::kPickup);
      break;
    case Command::kDrop:
      manual(envs::Action::kDrop);
      break;
    case Command::kToggle:
      manual(envs::Action::kToggle);
      break;
    case Command::kDone:
      manual(envs::Action::kDone);
      break;
  }
}

void ViewerController::StepAll() {
  for (int i = 0; i < session_->num_slots(); ++i) {
    if (state_.manual && i == state_.selected) continue;
    session_->Step(i, state_.sample);
  }
  UpdateFired();
}

void ViewerController::Tick(double dt) {
  if (!state_.paused) {
    step_accum_ += dt * state_.steps_per_second;
    int steps = 0;
    while (step_accum_ >= 1.0 && steps < 64) {
      StepAll();
      step_accum_ -= 1.0;
      ++steps;
    }
    if (step_accum_ >= 1.0) step_accum_ = 0.0;  // too slow to keep up: drop the backlog
  }
  if (config_.follow) {
    poll_accum_ += dt;
    if (poll_accum_ >= config_.follow_interval_s) {
      poll_accum_ = 0.0;
      Poll();
    }
  }
}

bool ViewerController::Poll() {
  bool changed = false;
  if (!config_.skills_path.empty() || !config_.run_dir.empty()) {
    if (config_.skills_path.empty() && fs::exists(fs::path(config_.run_dir) / "skills.json")) {
      config_.skills_path = (fs::path(config_.run_dir) / "skills.json").string();
    }
    if (!config_.skills_path.empty()) changed |= ReloadSkills();
  }
  if (config_.follow && !config_.run_dir.empty()) changed |= ReloadCheckpoint();
  return changed;
}

bool ViewerController::ReloadSkills() {
  std::error_code ec;
  const auto mtime = fs::last_write_time(config_.skills_path, ec);
  if (ec) return false;  // not written yet
  const uintmax_t size = fs::file_size(config_.skills_path, ec);
  if (snapshot_ && mtime == skills_mtime_ && size == skills_size_) return false;
  skills_mtime_ = mtime;
  skills_size_ = size;
  try {
    RoutingSnapshot snap = LoadLatestRoutingSnapshot(config_.skills_path, config_.default_tasks);
    // Keep the selected layer and head across reloads.
    std::string layer;
    int head = 0;
    if (snapshot_ && state_.matrix < static_cast<int>(snapshot_->matrices.size())) {
      layer = snapshot_->matrices[state_.matrix].layer;
      head = snapshot_->matrices[state_.matrix].head;
    }
    const bool first = !snapshot_;
    snapshot_ = std::move(snap);
    const int found = layer.empty() ? -1 : snapshot_->Find(layer, head);
    state_.matrix = found >= 0 ? found : 0;
    char buf[128];
    std::snprintf(buf, sizeof(buf), "%s skills.json%s", first ? "loaded" : "reloaded",
                  snapshot_->frames >= 0
                      ? (" (frames " + std::to_string(snapshot_->frames) + ")").c_str()
                      : "");
    SetMessage(buf);
    UpdateFired();
    return true;
  } catch (const std::exception& e) {
    SetMessage(e.what());
    return false;
  }
}

bool ViewerController::ReloadCheckpoint() {
  if (!config_.load_checkpoint) return false;
  RunInfo run;
  try {
    run = ReadRunDir(config_.run_dir);
  } catch (const std::exception&) {
    return false;
  }
  const std::string latest = LatestCheckpoint(run);
  if (latest.empty() || latest == checkpoint_) return false;
  std::string why;
  auto actor = config_.load_checkpoint(latest, &why);
  checkpoint_ = latest;  // a bad checkpoint is not retried until a newer one appears
  if (!actor) {
    SetMessage(why);
    return false;
  }
  session_->SetActor(std::move(actor));
  state_.actor = session_->actor()->name();
  SetMessage("loaded " + fs::path(latest).filename().string());
  return true;
}

void ViewerController::MoveMatrix(int layer_delta, int head_delta) {
  if (!snapshot_ || snapshot_->matrices.empty()) return;
  const auto layers = snapshot_->LayerNames();
  const RoutingMatrix& cur = snapshot_->matrices[state_.matrix];
  int li = static_cast<int>(std::find(layers.begin(), layers.end(), cur.layer) - layers.begin());
  int head = cur.head;
  const int nl = static_cast<int>(layers.size());
  if (layer_delta != 0) {
    li = (li + layer_delta + nl) % nl;
    head = 0;
  } else {
    const int nh = std::max(1, cur.num_heads);
    head = (head + head_delta + nh) % nh;
  }
  int idx = snapshot_->Find(layers[li], head);
  if (idx < 0) idx = snapshot_->Find(layers[li], 0);
  if (idx >= 0) state_.matrix = idx;
  UpdateFired();
}

void ViewerController::UpdateFired() {
  state_.fired.clear();
  if (!snapshot_ || snapshot_->matrices.empty() || session_->num_slots() == 0) return;
  const RoutingMatrix& m = snapshot_->matrices[std::min<int>(state_.matrix, snapshot_->matrices.size() - 1)];
  const int slot = std::min(state_.selected, session_->num_slots() - 1);
  if (Actor* actor = session_->actor()) {
    if (auto fired = actor->FiredSkills(slot, m.layer, m.head)) {
      state_.fired = *fired;
      return;
    }
  }
  state_.fired = FiringSkills(m, session_->slot(slot).task);
}

DashboardLayout ViewerController::Draw(envs::RgbImage* out) {
  return DrawDashboard(*session_, snapshot(), state_, out, &scratch_);
}

}  // namespace skillgrid::viz
