// Trained policies as viewer actors. Loading a checkpoint needs the trainer's loader (LibTorch,
// training/); builds without it report what is missing instead.
#pragma once

#include <memory>
#include <string>

#include "viz/run_dir.h"
#include "viz/session.h"

namespace skillgrid::viz {

/// True when this build can load checkpoints into actors.
bool PolicyLoaderAvailable();

/// Builds an actor from `checkpoint` (a file of `run`). On failure returns null and sets *why
/// to a one-line reason (no loader in this build, unreadable checkpoint, other architecture).
std::unique_ptr<Actor> LoadPolicyActor(const RunInfo& run, const std::string& checkpoint,
                                       std::string* why);

}  // namespace skillgrid::viz
