#include "envs/conformance.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "envs/episode.h"
#include "envs/state_io.h"

namespace skillgrid::envs {

namespace {

using nlohmann::json;

std::string ImageDiff(const uint8_t* actual, const json& expected, int* first_index) {
  for (int k = 0; k < static_cast<int>(expected.size()); ++k) {
    if (expected[k].get<int>() != actual[k]) {
      *first_index = k;
      return std::to_string(actual[k]);
    }
  }
  *first_index = -1;
  return "";
}

// Checks an observation; fills the verdict and returns false on the first mismatch.
bool CheckObservation(const Episode& ep, const json& obs, int step, TraceVerdict* v) {
  const int view = ep.world().agent_view_size;
  const json& image = obs.at("image");
  if (!image.is_array() || static_cast<int>(image.size()) != ObservationBytes(view)) {
    throw InputError("step " + std::to_string(step) + ": 'image' is not an array of " +
                     std::to_string(ObservationBytes(view)) + " integers");
  }
  for (const json& x : image) {
    if (!x.is_number_integer()) {
      throw InputError("step " + std::to_string(step) + ": 'image' holds a non-integer");
    }
  }
  uint8_t actual[31 * 31 * 3];
  ep.Observe(actual);
  int index = -1;
  std::string got = ImageDiff(actual, image, &index);
  if (index >= 0) {
    const int c = index % 3, cell = index / 3;
    std::ostringstream f;
    f << "image[" << index << "] (view column " << cell / view << ", row " << cell % view
      << ", channel " << c << ")";
    v->fail_step = step;
    v->field = f.str();
    v->expected = std::to_string(image[index].get<int>());
    v->actual = got;
    return false;
  }
  const int dir = obs.at("direction").get<int>();
  if (dir != ep.world().agent_dir) {
    v->fail_step = step;
    v->field = "direction";
    v->expected = std::to_string(dir);
    v->actual = std::to_string(ep.world().agent_dir);
    return false;
  }
  return true;
}

bool Mismatch(TraceVerdict* v, int step, const char* field, const std::string& expected,
              const std::string& actual) {
  v->fail_step = step;
  v->field = field;
  v->expected = expected;
  v->actual = actual;
  return false;
}

std::string Bool(bool b) { return b ? "true" : "false"; }

bool ReplaySteps(const json& episode, TraceVerdict* v) {
  EpisodeState state = EpisodeStateFromJson(episode.at("initial"));
  // The mission text must parse; it must also be what the instruction tree says.
  const Instr parsed = ParseMission(state.world.mission);
  (void)parsed;
  Episode ep;
  ep.Start(state.world, state.instr);
  if (Surface(ep.instr()) != state.world.mission) {
    return Mismatch(v, 0, "mission", state.world.mission, Surface(ep.instr()));
  }
  if (!CheckObservation(ep, episode.at("initial_obs"), 0, v)) return false;

  const json& steps = episode.at("steps");
  if (!steps.is_array()) throw InputError("'steps' is not an array");
  bool ended = false;
  for (size_t k = 0; k < steps.size(); ++k) {
    const int step = static_cast<int>(k) + 1;
    const json& s = steps[k];
    if (ended) throw InputError("step " + std::to_string(step) + " follows the episode's end");
    const json& a = s.at("action");
    if (!a.is_number_integer() || a.get<long long>() < 0 || a.get<long long>() > 6) {
      throw InputError("step " + std::to_string(step) + ": action " + a.dump() +
                       " is outside 0..6");
    }
    const StepResult r = ep.Step(static_cast<Action>(a.get<int>()));
    v->steps = step;
    if (!CheckObservation(ep, s, step, v)) return false;
    const double reward = s.at("reward").get<double>();
    if (!(std::fabs(reward - r.reward) <= 1e-6)) {
      return Mismatch(v, step, "reward", std::to_string(reward), std::to_string(r.reward));
    }
    const bool term = s.at("terminated").get<bool>();
    const bool trunc = s.at("truncated").get<bool>();
    if (term != r.terminated) return Mismatch(v, step, "terminated", Bool(term), Bool(r.terminated));
    if (trunc != r.truncated) return Mismatch(v, step, "truncated", Bool(trunc), Bool(r.truncated));
    ended = term || trunc;
  }
  return true;
}

}  // namespace

std::string TraceVerdict::Describe() const {
  std::ostringstream o;
  o << level << " seed " << seed << " step " << fail_step << " " << field;
  if (field == "input") {
    o << ": " << actual;
  } else {
    o << ": expected " << expected << ", got " << actual;
  }
  return o.str();
}

TraceVerdict ReplayTrace(const json& episode) {
  TraceVerdict v;
  v.level = "?";
  try {
    if (!episode.is_object()) throw InputError("a trace line must be a JSON object");
    if (auto it = episode.find("level"); it != episode.end() && it->is_string()) {
      v.level = it->get<std::string>();
    }
    if (auto it = episode.find("seed"); it != episode.end() && it->is_number_integer()) {
      v.seed = it->get<long long>();
    }
    v.passed = ReplaySteps(episode, &v);
  } catch (const json::exception& e) {
    v.passed = false;
    v.fail_step = v.steps;
    v.field = "input";
    v.actual = std::string("malformed trace: ") + e.what();
  } catch (const std::exception& e) {
    v.passed = false;
    v.fail_step = v.steps;
    v.field = "input";
    v.actual = e.what();
  }
  return v;
}

TraceVerdict ReplayTraceLine(const std::string& line) {
  json episode;
  try {
    episode = json::parse(line);
  } catch (const json::exception& e) {
    TraceVerdict v;
    v.level = "?";
    v.field = "input";
    v.fail_step = 0;
    v.actual = std::string("malformed JSON: ") + e.what();
    return v;
  }
  return ReplayTrace(episode);
}

}  // namespace skillgrid::envs
