// Policy loading in builds without the trainer: says what is missing.
#include "viz/policy.h"

namespace skillgrid::viz {

bool PolicyLoaderAvailable() { return false; }

std::unique_ptr<Actor> LoadPolicyActor(const RunInfo&, const std::string& checkpoint,
                                       std::string* why) {
  if (why) {
    *why = "cannot load checkpoint '" + checkpoint +
           "': this build has no policy loader (needs LibTorch and the trainer, training/)";
  }
  return nullptr;
}

}  // namespace skillgrid::viz
