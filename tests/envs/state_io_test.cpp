// Tests for envs/state_io.cpp: the state JSON round trip and its error messages.
#include "envs/state_io.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace skillgrid::envs {
namespace {

using nlohmann::json;

std::vector<json> TraceStates(int count) {
  std::ifstream in(std::string(SKILLGRID_SHARED_DIR) + "/conformance/babyai_public.jsonl");
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line) && static_cast<int>(out.size()) < count) {
    out.push_back(json::parse(line)["initial"]);
  }
  return out;
}

// Every trace state survives load -> save -> load with the same world.
TEST(StateIoTest, RoundTripsEveryTraceState) {
  const std::vector<json> states = TraceStates(1000);
  ASSERT_EQ(states.size(), 574u);
  for (const json& s : states) {
    const WorldState a = WorldFromJson(s);
    const json saved = WorldToJson(a);
    const WorldState b = WorldFromJson(saved);
    ASSERT_EQ(saved, WorldToJson(b));
    EXPECT_EQ(a.agent_pos, b.agent_pos);
    EXPECT_EQ(a.mission, s["mission"].get<std::string>());
    EXPECT_EQ(saved["cells"].size(), s["cells"].size());
    for (int y = 0; y < a.grid.height(); ++y)
      for (int x = 0; x < a.grid.width(); ++x) ASSERT_TRUE(a.grid.at(x, y).SameLook(b.grid.at(x, y)));
  }
}

TEST(StateIoTest, BoxContentsAndCarryingSurvive) {
  json s = TraceStates(1)[0];
  s["cells"].push_back({{"type", "box"}, {"color", "red"}, {"state", 0}, {"x", 1}, {"y", 1},
                        {"contains", {{"type", "key"}, {"color", "blue"}, {"state", 0}}}});
  s["carrying"] = {{"type", "ball"}, {"color", "green"}, {"state", 0}};
  const WorldState w = WorldFromJson(s);
  EXPECT_EQ(w.grid.at(1, 1).inner_type, ObjectType::kKey);
  EXPECT_EQ(w.grid.at(1, 1).inner_color, Color::kBlue);
  EXPECT_EQ(w.carrying.type, ObjectType::kBall);
  const json saved = WorldToJson(w);
  EXPECT_EQ(saved["carrying"]["color"], "green");
  EXPECT_EQ(WorldFromJson(saved).grid.at(1, 1).inner_color, Color::kBlue);
}

// Each corruption gives an InputError whose message names the problem.
TEST(StateIoTest, MalformedStatesNameTheProblem) {
  const json good = TraceStates(1)[0];
  struct Case {
    std::function<void(json&)> corrupt;
    std::string expected_in_message;
  };
  const std::vector<Case> cases = {
      {[](json& s) { s["cells"][3]["color"] = "pink"; }, "unknown colour 'pink'"},
      {[](json& s) { s["cells"][3]["type"] = "dragon"; }, "unknown object type 'dragon'"},
      {[](json& s) { s["cells"][3]["x"] = 500; }, "outside"},
      {[](json& s) { s["agent_pos"] = {-1, 2}; }, "agent_pos"},
      {[](json& s) { s["agent_dir"] = 4; }, "agent_dir"},
      {[](json& s) { s.erase("width"); }, "missing field 'width'"},
      {[](json& s) { s["cells"][3]["state"] = 2; }, "state"},
      {[](json& s) { s["agent_view_size"] = 6; }, "odd"},
      {[](json& s) { s["carrying"] = {{"type", "door"}, {"color", "red"}, {"state", 0}}; },
       "cannot be carried"},
      {[](json& s) { s["rooms"]["room_size"] = 5; }, "rooms"},
      {[](json& s) { s["cells"].push_back(s["cells"][0]); }, "two objects"},
      {[](json& s) { s["cells"] = "nope"; }, "not an array"},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    json s = good;
    cases[k].corrupt(s);
    try {
      WorldFromJson(s);
      ADD_FAILURE() << "case " << k << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(cases[k].expected_in_message), std::string::npos)
          << "case " << k << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
    }
  }
}

}  // namespace
}  // namespace skillgrid::envs
