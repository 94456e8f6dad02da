// Session slots, the random and bot actors, start-state files.
#include "viz/session.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "envs/bot.h"

namespace skillgrid::viz {
namespace {

class RandomActor : public Actor {
 public:
  explicit RandomActor(uint64_t seed) : rng_(seed, 77) {}
  std::string name() const override { return "random actions"; }
  void BeginEpisode(int, int, const envs::Episode&) override {}
  envs::Action Act(int, int, const envs::Episode&, bool) override {
    return static_cast<envs::Action>(rng_.Int(0, 6));
  }

 private:
  envs::Rng rng_;
};

class BotActor : public Actor {
 public:
  std::string name() const override { return "expert bot"; }
  // The bot replans after every applied step (its own suggestion or a manual action), so its
  // seen mask and plan always follow the episode.
  void BeginEpisode(int slot, int, const envs::Episode& episode) override {
    Grow(slot);
    bots_[slot].Reset(episode);
    suggested_[slot] = bots_[slot].Replan(std::nullopt);
  }
  envs::Action Act(int slot, int, const envs::Episode&, bool) override { return suggested_[slot]; }
  void Applied(int slot, envs::Action action) override {
    const std::optional<envs::Action> last =
        action == suggested_[slot] ? std::nullopt : std::optional<envs::Action>(action);
    suggested_[slot] = bots_[slot].Replan(last);
  }

 private:
  void Grow(int slot) {
    if (slot >= static_cast<int>(bots_.size())) {
      bots_.resize(slot + 1);
      suggested_.resize(slot + 1, envs::Action::kDone);
    }
  }
  std::vector<envs::Bot> bots_;
  std::vector<envs::Action> suggested_;
};

}  // namespace

std::unique_ptr<Actor> MakeRandomActor(uint64_t seed) { return std::make_unique<RandomActor>(seed); }

std::unique_ptr<Actor> MakeBotActor() { return std::make_unique<BotActor>(); }

Session::Session(const SessionConfig& config, std::unique_ptr<Actor> actor)
    : config_(config), actor_(std::move(actor)) {
  const int n = static_cast<int>(config_.levels.size());
  slots_.resize(n);
  envs_.resize(n);
  next_start_.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    slots_[i].level = config_.levels[i];
    slots_[i].task = i < static_cast<int>(config_.tasks.size()) ? config_.tasks[i] : i;
    const bool fixed = i < static_cast<int>(config_.fixed_starts.size()) &&
                       !config_.fixed_starts[i].empty();
    if (!fixed) envs_[i] = std::make_unique<envs::BabyAIEnv>(config_.levels[i]);
  }
  for (int i = 0; i < n; ++i) StartEpisode(i);
}

void Session::SetActor(std::unique_ptr<Actor> actor) {
  actor_ = std::move(actor);
  if (actor_) {
    for (int i = 0; i < num_slots(); ++i) actor_->BeginEpisode(i, slots_[i].task, slots_[i].episode);
  }
}

void Session::StartEpisode(int i) {
  TaskSlot& s = slots_[i];
  const int k = next_start_[i]++;
  if (envs_[i]) {
    s.episode_seed = config_.seed + static_cast<uint64_t>(k) * slots_.size() + i;
    envs_[i]->Reset(s.episode_seed);
    s.episode = envs_[i]->episode();
  } else {
    const auto& starts = config_.fixed_starts[i];
    const envs::EpisodeState& st = starts[k % starts.size()];
    s.episode.Start(st.world, st.instr);
    s.episode_seed = 0;
  }
  s.done = false;
  s.last_reward = 0.0f;
  s.episode_return = 0.0f;
  s.last_action.clear();
  if (actor_) actor_->BeginEpisode(i, s.task, s.episode);
}

void Session::Apply(int i, envs::Action action) {
  TaskSlot& s = slots_[i];
  const envs::StepResult r = s.episode.Step(action);
  s.last_action = std::string(envs::ActionName(action));
  s.last_reward = r.reward;
  s.episode_return += r.reward;
  if (r.terminated || r.truncated) {
    s.done = true;
    s.episodes += 1;
    s.last_success = s.episode_return > 0.0f;
    if (s.last_success) s.successes += 1;
  }
}

void Session::Step(int i, bool sample) {
  if (slots_[i].done) {
    StartEpisode(i);
    return;
  }
  if (!actor_) return;
  const envs::Action a = actor_->Act(i, slots_[i].task, slots_[i].episode, sample);
  Apply(i, a);
  actor_->Applied(i, a);
}

void Session::StepManual(int i, envs::Action action) {
  if (slots_[i].done) StartEpisode(i);
  Apply(i, action);
  if (actor_) actor_->Applied(i, action);
}

void Session::Restart(int i) { StartEpisode(i); }

std::vector<StartState> LoadStartStates(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<nlohmann::json> objects;
  try {
    objects.push_back(nlohmann::json::parse(text));
  } catch (const nlohmann::json::parse_error&) {
    objects.clear();
    std::istringstream lines(text);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        objects.push_back(nlohmann::json::parse(line));
      } catch (const nlohmann::json::parse_error&) {
        throw std::runtime_error(path + ":" + std::to_string(n) + ": not valid JSON");
      }
    }
  }
  std::vector<StartState> out;
  for (const auto& j : objects) {
    StartState s;
    const nlohmann::json* state = &j;
    if (j.is_object() && j.contains("initial")) {
      state = &j["initial"];
      s.level = j.value("level", "");
    }
    try {
      s.state = envs::EpisodeStateFromJson(*state);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    out.push_back(std::move(s));
  }
  if (out.empty()) throw std::runtime_error(path + ": no state");
  return out;
}

}  // namespace skillgrid::viz
