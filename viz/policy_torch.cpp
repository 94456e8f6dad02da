// Policy loading through the trainer's checkpoint loader: an Actor running the recurrent
// actor-critic on CPU, one memory per slot.
#include <ATen/ATen.h>
#include <torch/types.h>

#include <filesystem>
#include <vector>

#include "agents/observation.h"
#include "envs/tokenizer.h"
#include "skills/task_batch.h"
#include "training/checkpoint.h"
#include "viz/policy.h"

namespace skillgrid::viz {
namespace {

class PolicyActor : public Actor {
 public:
  PolicyActor(training::LoadedModel loaded, std::string name)
      : model_(loaded.model), name_(std::move(name)) {
    model_->eval();
  }
  std::string name() const override { return name_; }
  void BeginEpisode(int slot, int, const envs::Episode&) override {
    Grow(slot);
    memory_[slot] = at::zeros({1, model_->memory_size()});
  }
  envs::Action Act(int slot, int task, const envs::Episode& episode, bool sample) override {
    Grow(slot);
    torch::NoGradGuard no_grad;
    const int v = episode.world().agent_view_size;
    std::vector<uint8_t> image(static_cast<size_t>(v) * v * 3);
    episode.Observe(image.data());
    int32_t tokens[kMaxTokens] = {};
    int32_t length = envs::MissionTokenizer::Encode(episode.world().mission, tokens, kMaxTokens);
    int64_t task_id = task;
    const at::Tensor tasks = at::from_blob(&task_id, {1}, at::kLong).clone();
    const agents::Observation obs = agents::MakeObservation(
        at::from_blob(image.data(), {1, v, v, 3}, at::kByte), at::from_blob(tokens, {1, kMaxTokens}, at::kInt),
        at::from_blob(&length, {1}, at::kInt), tasks);
    const skills::TaskBatch batch = skills::TaskBatch::FromTaskIds(tasks);
    const agents::PolicyOutput out = model_->Act(obs, memory_[slot], batch);
    memory_[slot] = out.memory;
    const at::Tensor a = sample ? agents::SampleActions(out.log_probs) : out.log_probs.argmax(1);
    return static_cast<envs::Action>(a.item<int64_t>());
  }

 private:
  static constexpr int kMaxTokens = 64;
  void Grow(int slot) {
    if (slot >= static_cast<int>(memory_.size())) {
      memory_.resize(slot + 1);
      for (auto& m : memory_) {
        if (!m.defined()) m = at::zeros({1, model_->memory_size()});
      }
    }
  }
  agents::ActorCritic model_;
  std::string name_;
  std::vector<at::Tensor> memory_;
};

}  // namespace

bool PolicyLoaderAvailable() { return true; }

std::unique_ptr<Actor> LoadPolicyActor(const RunInfo&, const std::string& checkpoint, std::string* why) {
  try {
    training::LoadedModel loaded = training::LoadModel(checkpoint, "cpu");
    const std::string name = "policy " + std::filesystem::path(checkpoint).filename().string();
    return std::make_unique<PolicyActor>(std::move(loaded), name);
  } catch (const std::exception& e) {
    if (why) {
      std::string msg = e.what();
      if (msg.find(checkpoint) == std::string::npos) msg = "cannot load checkpoint '" + checkpoint + "': " + msg;
      *why = msg.substr(0, msg.find('\n'));
    }
    return nullptr;
  }
}

}  // namespace skillgrid::viz
